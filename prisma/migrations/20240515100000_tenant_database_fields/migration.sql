-- CreateEnum
CREATE TYPE "DatabaseType" AS ENUM ('shared', 'dedicated');

-- AlterTable
ALTER TABLE "Tenant" ADD COLUMN     "databaseType" "DatabaseType" NOT NULL DEFAULT 'shared',
ADD COLUMN     "databaseUrl" TEXT,
ADD COLUMN     "maintenanceMode" BOOLEAN NOT NULL DEFAULT false,
ADD COLUMN     "migratedAt" TIMESTAMP(3);
