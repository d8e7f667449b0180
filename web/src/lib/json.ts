/**
 * The dashboard's one JSON reader: responses from the api are checked against the shape the view needs,
 * so a bad answer shows an error instead of a half-rendered page.
 */
export type Guard<T> = (value: unknown) => value is T;

export async function readJson<T>(response: Response, guard: Guard<T>): Promise<T> {
  const text = await response.text();
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error(`unexpected response from ${response.url}: not JSON`);
  }
  if (!guard(value)) throw new Error(`unexpected response from ${response.url}`);
  return value;
}
