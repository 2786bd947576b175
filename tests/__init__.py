"""Tests mirror the packages: engine (tenantmove), reference schema (stagesub), workflows, activities."""
