/**
 * Internal (used by tests): a strict parser of the Prometheus text exposition format, version
 * 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/), for tests that check a
 * `/metrics` endpoint. Strict where a scraper would be lenient, so that a test fails on output a
 * real Prometheus might reject or misread: every line must parse, a family's TYPE and HELP come
 * before its samples and at most once, a family's lines are contiguous, no series repeats, sample
 * names fit their family's type, counters are finite and not negative, and every histogram series
 * has cumulative buckets ending in `+Inf` equal to its `_count`, and a `_sum`.
 *
 * Why not the npm package `parse-prometheus-text-format` (1.1.1, the only parser on npm): it
 * merges the series of a labelled histogram into one and drops their labels, `_sum` and `_count`
 * (its issue #13 and pull request #8, open since 2019/2020), and it accepts lines such as
 * `bad line here` as samples. Plain JavaScript (types in prometheus.d.ts), like net.js.
 */

/**
 * @typedef {{ name: string, labels: Record<string, string>, value: number }} Sample
 * @typedef {{ name: string, type: string, typed: boolean, help: string | undefined, samples: Sample[] }} Family
 */

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

export class PrometheusParseError extends Error {
  /** @param {number} line @param {string} message */
  constructor(line, message) {
    super(`line ${line}: ${message}`);
    this.name = 'PrometheusParseError';
    this.line = line;
  }
}

/** @param {string} text @param {number} line */
function parseValue(text, line) {
  if (text === '+Inf' || text === 'Inf') return Number.POSITIVE_INFINITY;
  if (text === '-Inf') return Number.NEGATIVE_INFINITY;
  if (text === 'NaN') return Number.NaN;
  if (!/^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/.test(text))
    throw new PrometheusParseError(line, `not a number: ${JSON.stringify(text)}`);
  return Number(text);
}

/**
 * Parses `name{labels} value [timestamp]`.
 * @param {string} text @param {number} line
 */
function parseSample(text, line) {
  let i = 0;
  while (i < text.length && /[a-zA-Z0-9_:]/.test(text.charAt(i))) i++;
  const name = text.slice(0, i);
  if (!METRIC_NAME.test(name))
    throw new PrometheusParseError(line, `bad metric name in ${JSON.stringify(text)}`);
  /** @type {Record<string, string>} */
  const labels = {};
  if (text[i] === '{') {
    i++;
    for (;;) {
      if (text[i] === '}') {
        i++;
        break;
      }
      let j = i;
      while (j < text.length && /[a-zA-Z0-9_]/.test(text.charAt(j))) j++;
      const label = text.slice(i, j);
      if (!LABEL_NAME.test(label) || label.startsWith('__'))
        throw new PrometheusParseError(line, `bad label name ${JSON.stringify(label)}`);
      if (Object.hasOwn(labels, label))
        throw new PrometheusParseError(line, `label ${label} twice`);
      if (text[j] !== '=' || text[j + 1] !== '"')
        throw new PrometheusParseError(line, `label ${label} needs ="value"`);
      j += 2;
      let value = '';
      for (;;) {
        const ch = text[j];
        if (ch === undefined) throw new PrometheusParseError(line, 'unterminated label value');
        if (ch === '"') break;
        if (ch === '\\') {
          const next = text[j + 1];
          if (next === '\\') value += '\\';
          else if (next === '"') value += '"';
          else if (next === 'n') value += '\n';
          else throw new PrometheusParseError(line, `bad escape \\${next ?? ''} in a label value`);
          j += 2;
        } else {
          value += ch;
          j++;
        }
      }
      labels[label] = value;
      i = j + 1;
      if (text[i] === ',') i++;
      else if (text[i] !== '}')
        throw new PrometheusParseError(line, 'labels must be separated by ","');
    }
  }
  const rest = text.slice(i);
  const parts = rest.trim().split(/[ \t]+/);
  if (!/^[ \t]/.test(rest) || parts.length < 1 || parts.length > 2 || parts[0] === '')
    throw new PrometheusParseError(line, `expected "value [timestamp]" after ${name}`);
  const value = parseValue(parts[0] ?? '', line);
  if (parts.length === 2 && !/^-?\d+$/.test(parts[1] ?? ''))
    throw new PrometheusParseError(line, `bad timestamp ${JSON.stringify(parts[1])}`);
  return { name, labels, value };
}

/**
 * The family a sample name belongs to, given the families declared so far.
 * @param {string} name @param {Map<string, Family>} families
 */
function familyOf(name, families) {
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (!name.endsWith(suffix)) continue;
    const base = name.slice(0, -suffix.length);
    const family = families.get(base);
    if (
      family &&
      (family.type === 'histogram' || (family.type === 'summary' && suffix !== '_bucket'))
    )
      return base;
  }
  return name;
}

/**
 * A series' identity: its name and labels, `le`/`quantile` included.
 * @param {string} name @param {Record<string, string>} labels
 */
function seriesKey(name, labels) {
  return `${name}{${Object.keys(labels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(labels[k])}`)
    .join(',')}}`;
}

/**
 * Parses `text`; throws {@link PrometheusParseError} at the first problem.
 * @param {string} text
 */
export function parsePrometheusText(text) {
  if (typeof text !== 'string') throw new TypeError('text must be a string');
  if (text.length > 0 && !text.endsWith('\n'))
    throw new PrometheusParseError(
      text.split('\n').length,
      'the last line must end with a line feed',
    );
  /** @type {Map<string, Family>} */
  const families = new Map();
  const series = new Set();
  /** @type {string | undefined} */
  let current;
  const lines = text.split('\n');
  lines.pop();
  lines.forEach((raw, index) => {
    const line = index + 1;
    if (raw.includes('\r'))
      throw new PrometheusParseError(line, 'carriage return (lines end with \\n only)');
    if (raw.trim() === '') return;
    const meta = /^#[ \t]+(HELP|TYPE)[ \t]+(\S+)(?:[ \t]+(.*))?$/.exec(raw);
    if (raw.startsWith('#') && !meta) return; // a comment
    /** @param {string} name */
    const enter = (name) => {
      if (current !== name && (families.get(name)?.samples.length ?? 0) > 0)
        throw new PrometheusParseError(line, `the lines of ${name} are not together`);
      current = name;
    };
    if (meta) {
      const keyword = meta[1] ?? '';
      const name = meta[2] ?? '';
      const rest = meta[3] ?? '';
      if (!METRIC_NAME.test(name)) throw new PrometheusParseError(line, `bad metric name ${name}`);
      enter(name);
      const family = families.get(name) ?? newFamily(name);
      families.set(name, family);
      if (family.samples.length > 0)
        throw new PrometheusParseError(line, `${keyword} of ${name} after its samples`);
      if (keyword === 'TYPE') {
        if (family.typed) throw new PrometheusParseError(line, `second TYPE for ${name}`);
        if (!TYPES.has(rest))
          throw new PrometheusParseError(line, `unknown type ${JSON.stringify(rest)}`);
        family.type = rest;
        family.typed = true;
      } else {
        if (family.help !== undefined)
          throw new PrometheusParseError(line, `second HELP for ${name}`);
        family.help = rest.replace(/\\(\\|n)/g, (_, c) => (c === 'n' ? '\n' : '\\'));
      }
      return;
    }
    const sample = parseSample(raw, line);
    const name = familyOf(sample.name, families);
    enter(name);
    const family = families.get(name) ?? newFamily(name);
    families.set(name, family);
    const key = seriesKey(sample.name, sample.labels);
    if (series.has(key)) throw new PrometheusParseError(line, `series ${key} twice`);
    series.add(key);
    if (family.type === 'histogram' && sample.name === `${name}_bucket`) {
      if (sample.labels.le === undefined)
        throw new PrometheusParseError(line, `${sample.name} without le`);
      parseValue(sample.labels.le, line);
    }
    if (family.type === 'histogram' && sample.name === name)
      throw new PrometheusParseError(line, `histogram ${name} has no plain samples`);
    if (family.type === 'counter' && !(Number.isFinite(sample.value) && sample.value >= 0))
      throw new PrometheusParseError(line, `counter ${name} must be finite and >= 0`);
    family.samples.push(sample);
  });
  for (const family of families.values()) checkHistogram(family);
  const out = new Map();
  for (const { typed: _typed, ...family } of families.values()) out.set(family.name, family);
  return out;
}

/**
 * @param {string} name
 * @returns {Family}
 */
function newFamily(name) {
  return { name, type: 'untyped', typed: false, help: undefined, samples: [] };
}

/**
 * Every series of a histogram: cumulative buckets, `+Inf` = `_count`, a `_sum`.
 * @param {Family} family
 */
function checkHistogram(family) {
  if (family.type !== 'histogram') return;
  /** @type {Map<string, { buckets: [number, number][], sum: number | undefined, count: number | undefined }>} */
  const groups = new Map();
  for (const sample of family.samples) {
    const { le, ...rest } = sample.labels;
    const key = seriesKey('', rest);
    const group = groups.get(key) ?? { buckets: [], sum: undefined, count: undefined };
    groups.set(key, group);
    if (sample.name.endsWith('_bucket'))
      group.buckets.push([le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le), sample.value]);
    else if (sample.name.endsWith('_sum')) group.sum = sample.value;
    else group.count = sample.value;
  }
  for (const [key, group] of groups) {
    const where = `histogram ${family.name}${key}`;
    if (group.sum === undefined || group.count === undefined)
      throw new PrometheusParseError(0, `${where} lacks _sum or _count`);
    const buckets = group.buckets.sort((a, b) => a[0] - b[0]);
    const last = buckets.at(-1);
    if (last === undefined || last[0] !== Number.POSITIVE_INFINITY)
      throw new PrometheusParseError(0, `${where} has no +Inf bucket`);
    buckets.forEach(([le, count], i) => {
      const before = buckets[i - 1];
      if (before !== undefined && count < before[1])
        throw new PrometheusParseError(0, `${where}: bucket le=${le} is below the one before`);
    });
    if (last[1] !== group.count)
      throw new PrometheusParseError(0, `${where}: the +Inf bucket is not _count`);
  }
}

/**
 * The value of the one series of `name` whose labels include `labels`; throws when there is no
 * such series or more than one.
 * @param {ReadonlyMap<string, { samples: readonly Sample[] }>} families
 * @param {string} name
 * @param {Record<string, string>} [labels]
 */
export function sampleValue(families, name, labels = {}) {
  const found = [];
  for (const family of families.values()) {
    for (const sample of family.samples) {
      if (sample.name !== name) continue;
      if (Object.entries(labels).every(([k, v]) => sample.labels[k] === v)) found.push(sample);
    }
  }
  if (found.length !== 1)
    throw new Error(`${found.length} series of ${name} match ${JSON.stringify(labels)}`);
  return /** @type {Sample} */ (found[0]).value;
}
