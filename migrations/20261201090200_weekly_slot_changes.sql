-- When an admin last moved the project's weekly slot (NULL: never; the slot is the one drawn when
-- the project was added). A slot's occurrences before it was set are not due, as those before the
-- project was added are not: moving the slot to an earlier hour of the week does not start a
-- scan at once, it waits for the new slot's next occurrence.
ALTER TABLE projects ADD COLUMN weekly_slot_set_at timestamptz;
