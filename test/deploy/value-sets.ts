import { requiredValues } from './render-chart.js';

/** The value sets the chart is rendered with in the tests. */
export const withMonitoring = {
  ...requiredValues,
  monitoring: {
    serviceMonitor: { enabled: true, labels: { release: 'prometheus' } },
    prometheusRule: {
      enabled: true,
      groups: [
        {
          name: 'handover',
          rules: [
            { alert: 'HandoverDown', expr: 'up{job="handover"} == 0', for: '5m', labels: { severity: 'page' }, annotations: { summary: 'handover is down' } },
          ],
        },
      ],
    },
  },
};

export const valueSets: Record<string, object> = {
  defaults: requiredValues,
  'HPA on': { ...requiredValues, autoscaling: { enabled: true } },
  'KEDA instead of HPA': { ...requiredValues, autoscaling: { enabled: true, engine: 'keda' } },
  'monitoring on': withMonitoring,
  'existing secret, everything on': { secret: { existingSecret: 'handover-prod' }, autoscaling: { enabled: true }, monitoring: withMonitoring.monitoring },
};
