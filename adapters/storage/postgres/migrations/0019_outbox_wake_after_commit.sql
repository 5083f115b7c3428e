-- Writers wake the queue's consumers after their commit (adapters/bus/wake.py), no longer
-- from inside it: the NOTIFY of 0007's trigger made every transaction inserting an outbox
-- row take the database-wide notify lock at commit and hold it through the commit's WAL
-- flush, so all of them (each form post's, each reply's) committed one flush at a time.
DROP TRIGGER IF EXISTS outbox_notify ON outbox;
DROP FUNCTION IF EXISTS outbox_notify();
