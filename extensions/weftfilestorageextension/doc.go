// Package weftfilestorage implements the weft_file_storage extension, a
// storage.Extension for the exporters' persistent sending queues and the
// receivers' checkpoints. Each client is a checksummed append-only log: a
// damaged record or a full disk neither stops the collector nor loses data
// silently; what cannot be read is counted by reason.
package weftfilestorageextension
