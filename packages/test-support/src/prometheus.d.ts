/** One sample line: its name (with `_bucket`, `_sum`, `_count` for a histogram), labels, value. */
export interface PrometheusSample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** A metric family: its TYPE (`untyped` without one), HELP and samples, in order. */
export interface PrometheusFamily {
  readonly name: string;
  readonly type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
  readonly help: string | undefined;
  readonly samples: readonly PrometheusSample[];
}

/** What {@link parsePrometheusText} throws; `line` is 1-based (0 for a whole-family check). */
export declare class PrometheusParseError extends Error {
  readonly line: number;
}

/** Parses the text exposition format 0.0.4 strictly: families by name. */
export declare function parsePrometheusText(text: string): Map<string, PrometheusFamily>;

/** The value of the one series of `name` whose labels include `labels`; throws otherwise. */
export declare function sampleValue(
  families: ReadonlyMap<string, PrometheusFamily>,
  name: string,
  labels?: Readonly<Record<string, string>>,
): number;
