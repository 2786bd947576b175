"""stagesub: the StageSub application's reference Prisma schema and a generator of realistic tenant data."""
