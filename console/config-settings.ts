// Agent settings written as SECTION.FIELD=VALUE (VALUE is JSON, or else a plain string), as the CLI's
// `console config` takes them and the page's config editor sends them (`settings` of POST /api/config):
// into the nested object the console checks with the agent's schema.

export class SettingError extends Error {}

export function settingsToValues(settings: { field: string; value: string }[]): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  for (const { field, value: text } of settings) {
    const path = field.trim().split('.');
    if (path.length < 2 || path.some((p) => p === ''))
      throw new SettingError(`"${field}": expected SECTION.FIELD, e.g. head.unknownThreshold`);
    let value: unknown = text;
    try {
      value = JSON.parse(text);
    } catch {
      // a plain string
    }
    let node = values;
    for (const key of path.slice(0, -1)) node = (node[key] ??= {}) as Record<string, unknown>;
    node[path.at(-1)!] = value;
  }
  return values;
}

/** "head.unknownThreshold=0.6" -> {field, value}. */
export function splitSetting(setting: string): { field: string; value: string } {
  const eq = setting.indexOf('=');
  if (eq < 1) throw new SettingError(`"${setting}": expected SECTION.FIELD=VALUE, e.g. head.unknownThreshold=0.6`);
  return { field: setting.slice(0, eq), value: setting.slice(eq + 1) };
}
