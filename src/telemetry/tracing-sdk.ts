import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOnSampler,
  BasicTracerProvider,
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  type Sampler,
} from '@opentelemetry/sdk-trace-base';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import type { TracingOptions } from './tracing-options.js';

/**
 * The OpenTelemetry SDK, loaded only by startTracing (a dynamic import), so an instance without a
 * collector never loads it. Spans are batched and exported in the background: a slow or absent
 * collector costs dropped spans (the queue is bounded), never a slower request or delivery.
 */
export function registerTracing(options: TracingOptions): { shutdown(): Promise<void> } {
  const exporter = new OTLPTraceExporter({ url: options.url, headers: options.headers, timeoutMillis: 10_000 });
  const provider = new BasicTracerProvider({
    sampler: samplerOf(options),
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: options.serviceName, 'service.instance.id': options.instanceId }),
    spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis: 500, maxQueueSize: 4096, maxExportBatchSize: 512, exportTimeoutMillis: 10_000 })],
  });
  // Context follows async calls (a request's span is the parent of what its handler awaits).
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  return {
    async shutdown() {
      try {
        await provider.shutdown();
      } finally {
        trace.disable();
        propagation.disable();
        context.disable();
      }
    },
  };
}

/** The sampler named by the settings (passed explicitly, so the SDK does not read it from the environment). */
function samplerOf(options: TracingOptions): Sampler {
  const ratio = new TraceIdRatioBasedSampler(options.samplerRatio);
  switch (options.sampler) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'traceidratio':
      return ratio;
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: ratio });
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
  }
}
