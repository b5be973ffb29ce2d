/** How tracing is set up: read by tracing.ts, which loads the SDK (tracing-sdk.ts) only when it is on. */
export interface TracingOptions {
  /** Where spans are POSTed (OTLP/HTTP JSON). */
  url: string;
  serviceName: string;
  instanceId: string;
  sampler: 'parentbased_always_on' | 'parentbased_traceidratio' | 'always_on' | 'traceidratio';
  samplerRatio: number;
  /** Sent with every export (a collector's credentials). */
  headers: Record<string, string>;
}
