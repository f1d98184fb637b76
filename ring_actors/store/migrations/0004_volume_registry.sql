-- The named-volume registry (resources.md §4): 0001 created the table with its
-- identity only; api.md §11 also shows size, host_path, labels and updated_at.
ALTER TABLE volume ADD COLUMN size INTEGER;
ALTER TABLE volume ADD COLUMN host_path TEXT;
ALTER TABLE volume ADD COLUMN labels TEXT NOT NULL DEFAULT '{}';
ALTER TABLE volume ADD COLUMN updated_at TEXT;
