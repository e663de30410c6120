// Package weftstoreprocessor implements the weft_store processor: it
// appends each batch of spans or log records to the weft_store extension
// (extensions/weftstoreextension) and passes the same batch on, unchanged.
//
// It does what the weft_store exporter does for traces and logs, from
// inside the pipeline instead of beside the other exporters. The
// difference is a copy: a pipeline whose exporters include a read-only
// one (the weft_store exporter) and one that changes data (any exporter
// that batches in its sending queue, or a forward connector to a pipeline
// holding one) makes the collector deep-copy every batch for the latter.
// The store reads a batch synchronously and keeps none of it, so as the
// last processor it can read the batch before the exporters get it, and
// the pipeline's only consumer may then take the batch itself.
package weftstoreprocessor
