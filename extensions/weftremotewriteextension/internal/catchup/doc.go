// Package catchup sends what an agent WAL holds after a progress mark to
// a remote-write endpoint: Tail reads the WAL (checkpoint, then segments,
// following the one being written), Sender turns its records into
// remote-write 1.0 requests with the endpoint's external labels and
// relabelling, and Progress keeps each endpoint's mark on disk. The
// weft_remote_write extension runs one before each endpoint's queue starts
// (see its README: restarts).
package catchup
