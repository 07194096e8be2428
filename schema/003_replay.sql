-- 003_replay.sql -- recognising a resent change after a lost ACK.
--
-- A device's changes reach the server in the order it made them, and its
-- clock only moves forward, so an entry whose hlc is not above the
-- greatest hlc already accepted from that device may be a change seen
-- before (its ACK was lost and the batch was resent).  The server then
-- looks the entry up in fs_log before merging it, so a replay is never
-- mistaken for a concurrent edit (docs/protocol.md, "Replays").
ALTER TABLE fs_device ADD COLUMN pushed_hlc INTEGER NOT NULL DEFAULT 0;
