-- btree_gist lets one exclusion constraint combine equality on an id with overlap on a time
-- range: that is how the database itself forbids double booking.
CREATE EXTENSION IF NOT EXISTS btree_gist;
