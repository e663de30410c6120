package containerlogsreceiver

import (
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Lost-data reasons (the "reason" attribute of the lost/dropped counters).
const (
	reasonRotation  = "rotation"  // a checkpointed file rotated away (deleted) while the agent was down
	reasonTruncated = "truncated" // copytruncate: bytes seen but not copied before the truncation
	reasonRejected  = "rejected"  // the next consumer returned a permanent error
)

// Skip reasons (the "reason" attribute of paths_skipped): a path that the
// include patterns matched and that is not read. Each is counted and logged
// once per path while the condition lasts.
const (
	skipSymlinkLoop = "symlink_loop"     // too many levels of symbolic links (ELOOP)
	skipDangling    = "dangling_symlink" // a symbolic link whose target does not exist
	skipSpecial     = "special_file"     // a FIFO, socket or device: never opened, a FIFO would block
	skipDirectory   = "directory"        // a directory whose name matches the file pattern (e.g. x.log/)
	skipPermission  = "permission"       // open or read refused (EACCES, EPERM)
	skipVanished    = "vanished"         // listed, then gone before it could be opened: its lines, if any, were never read
	skipOpenError   = "open_error"       // any other error of stat, open or read (EIO, ENXIO, ...)
)

// Watch fallback reasons (the "reason" attribute of watch_fallbacks): files
// polled every poll_interval because no change notification covers them.
const (
	watchUnavailable = "watcher_unavailable" // no inotify instance (max_user_instances, EMFILE, no inotify)
	watchLimit       = "watch_limit"         // a directory's watch refused: max_user_watches reached (ENOSPC)
	watchUnsupported = "unsupported_fs"      // a network or FUSE filesystem, where inotify misses other machines' writes
	watchError       = "watch_error"         // any other error adding a directory's watch (EACCES, ...)
)

// metricPrefix starts the name of every self-metric: the component type
// (container_logs.bytes_read, exposed by Prometheus as
// container_logs_bytes_read_total). The README lists them all.
const metricPrefix = typeStr + "."

// telemetry holds the receiver's self-metrics, all declared here. Every place that can lose a
// byte or a record counts it here.
type telemetry struct {
	bytesRead        metric.Int64Counter
	recordsEmitted   metric.Int64Counter
	recordsAcked     metric.Int64Counter
	recordsDropped   metric.Int64Counter
	bytesLost        metric.Int64Counter
	truncatedLines   metric.Int64Counter
	incompleteLines  metric.Int64Counter
	parseErrors      metric.Int64Counter
	permissionErrors metric.Int64Counter
	truncations      metric.Int64Counter
	pathsSkipped     metric.Int64Counter
	watchFallbacks   metric.Int64Counter
	watchOverflows   metric.Int64Counter
	openFiles        metric.Int64UpDownCounter
}

func newTelemetry(mp metric.MeterProvider) (*telemetry, error) {
	m := mp.Meter("github.com/weftobs/weft/receivers/containerlogsreceiver")
	t := &telemetry{}
	var err error
	mk := func(name, unit, desc string) metric.Int64Counter {
		if err != nil {
			return nil
		}
		var c metric.Int64Counter
		c, err = m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		return c
	}
	t.bytesRead = mk(metricPrefix+"bytes_read", "By", "Bytes read from container log files.")
	t.recordsEmitted = mk(metricPrefix+"records_emitted", "{record}", "Log records sent to the next consumer (retries not counted).")
	t.recordsAcked = mk(metricPrefix+"records_acknowledged", "{record}", "Log records the next consumer accepted.")
	t.recordsDropped = mk(metricPrefix+"records_dropped", "{record}", "Log records dropped, by reason.")
	t.bytesLost = mk(metricPrefix+"bytes_lost", "By", "Bytes of log files lost before they were read, by reason.")
	t.truncatedLines = mk(metricPrefix+"truncated_lines", "{record}", "Messages cut at max_log_size.")
	t.incompleteLines = mk(metricPrefix+"incomplete_lines", "{record}", "Partial messages emitted without their end (flush_timeout or file end).")
	t.parseErrors = mk(metricPrefix+"parse_errors", "{line}", "Lines in neither CRI nor docker format (emitted raw).")
	t.truncations = mk(metricPrefix+"truncations", "{event}", "Files found truncated (copytruncate or rewrite), by whether a copy was found. "+
		"Lines written after a copy and before its truncation exist nowhere; each such window is one event here.")
	t.permissionErrors = mk(metricPrefix+"permission_errors", "{error}", "Files that could not be opened or read for lack of permission.")
	t.pathsSkipped = mk(metricPrefix+"paths_skipped", "{path}", "Paths matched by include that are not read, by reason (counted once per path while the condition lasts).")
	t.watchFallbacks = mk(metricPrefix+"watch_fallbacks", "{event}", "Times the receiver fell back to polling every poll_interval: "+
		"the inotify watcher could not be created, or a directory could not be watched, by reason (once per directory while the condition lasts).")
	t.watchOverflows = mk(metricPrefix+"watch_overflows", "{event}", "Change notification queue overflows; each woke every file.")
	if err != nil {
		return nil, err
	}
	t.openFiles, err = m.Int64UpDownCounter(metricPrefix+"open_files", metric.WithUnit("{file}"),
		metric.WithDescription("Files currently held open."))
	return t, err
}

func reasonAttr(fileAttr attribute.KeyValue, reason string) metric.MeasurementOption {
	return metric.WithAttributes(fileAttr, attribute.String("reason", reason))
}

func fileAttrOf(path string) attribute.KeyValue {
	return attribute.String("log.file.path", path)
}
