package main

import (
	"github.com/open-telemetry/opentelemetry-collector-contrib/connector/spanmetricsconnector"
	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/prometheusexporter"
	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/prometheusremotewriteexporter"
	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/healthcheckextension"
	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/pprofextension"
	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage"
	"github.com/open-telemetry/opentelemetry-collector-contrib/receiver/jaegerreceiver"
	"github.com/open-telemetry/opentelemetry-collector-contrib/receiver/zipkinreceiver"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/connector/forwardconnector"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/debugexporter"
	"go.opentelemetry.io/collector/exporter/otlpexporter"
	"go.opentelemetry.io/collector/exporter/otlphttpexporter"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/zpagesextension"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/batchprocessor"
	"go.opentelemetry.io/collector/processor/memorylimiterprocessor"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/service/telemetry/otelconftelemetry"

	"github.com/weftobs/weft/exporters/fluentforwardexporter"
	weftstoreexporter "github.com/weftobs/weft/exporters/weftstoreexporter"
	"github.com/weftobs/weft/extensions/weftfilestorageextension"
	"github.com/weftobs/weft/extensions/weftpinsextension"
	"github.com/weftobs/weft/extensions/weftqueryextension"
	"github.com/weftobs/weft/extensions/weftremotewriteextension"
	"github.com/weftobs/weft/extensions/weftrulesextension"
	"github.com/weftobs/weft/extensions/weftstoreextension"
	"github.com/weftobs/weft/processors/clockguardprocessor"
	"github.com/weftobs/weft/processors/evidencesamplingprocessor"
	"github.com/weftobs/weft/processors/tracecontextprocessor"
	"github.com/weftobs/weft/processors/weftstoreprocessor"
	"github.com/weftobs/weft/receivers/containerlogsreceiver"
	"github.com/weftobs/weft/receivers/podscrapereceiver"
)

// components lists every component compiled into weft. It is written by hand,
// not generated: adding a component is a reviewed change to this file and to
// the list in components_test.go.
func components() (otelcol.Factories, error) {
	var err error
	factories := otelcol.Factories{
		// The collector refuses to start without a telemetry factory.
		Telemetry: otelconftelemetry.NewFactory(),
	}

	factories.Extensions, err = otelcol.MakeFactoryMap[extension.Factory](
		healthcheckextension.NewFactory(),
		pprofextension.NewFactory(),
		zpagesextension.NewFactory(),
		filestorage.NewFactory(),
		weftfilestorageextension.NewFactory(),
		weftstoreextension.NewFactory(),
		weftremotewriteextension.NewFactory(),
		weftqueryextension.NewFactory(),
		weftrulesextension.NewFactory(),
		weftpinsextension.NewFactory(),
	)
	if err != nil {
		return otelcol.Factories{}, err
	}

	factories.Receivers, err = otelcol.MakeFactoryMap[receiver.Factory](
		otlpreceiver.NewFactory(),
		jaegerreceiver.NewFactory(),
		zipkinreceiver.NewFactory(),
		containerlogsreceiver.NewFactory(),
		podscrapereceiver.NewFactory(),
	)
	if err != nil {
		return otelcol.Factories{}, err
	}

	factories.Processors, err = otelcol.MakeFactoryMap[processor.Factory](
		// batch is here for users' own configs; weft's shipped configs batch in
		// the exporters' persistent sending queues instead (see DESIGN.md).
		batchprocessor.NewFactory(),
		memorylimiterprocessor.NewFactory(),
		clockguardprocessor.NewFactory(),
		tracecontextprocessor.NewFactory(),
		evidencesamplingprocessor.NewFactory(),
		weftstoreprocessor.NewFactory(),
	)
	if err != nil {
		return otelcol.Factories{}, err
	}

	factories.Exporters, err = otelcol.MakeFactoryMap[exporter.Factory](
		debugexporter.NewFactory(),
		otlpexporter.NewFactory(),
		otlphttpexporter.NewFactory(),
		prometheusexporter.NewFactory(),
		prometheusremotewriteexporter.NewFactory(),
		weftstoreexporter.NewFactory(),
		fluentforwardexporter.NewFactory(),
	)
	if err != nil {
		return otelcol.Factories{}, err
	}

	factories.Connectors, err = otelcol.MakeFactoryMap[connector.Factory](
		// RED metrics (rate, errors, duration) with exemplars from spans, for
		// functions that expose no metrics endpoint.
		spanmetricsconnector.NewFactory(),
		// Hands a pipeline's data to another pipeline of the same signal:
		// the default profile's traces/export and logs/export pipelines,
		// where export sampling goes, read what weft_store got in full.
		forwardconnector.NewFactory(),
	)
	if err != nil {
		return otelcol.Factories{}, err
	}
	return factories, nil
}
