/**
 * Tiny runtime checks for what enters the dashboard from the api (REST answers, ws frames). The app may
 * not import the api's zod schemas (web/ speaks only HTTP/ws), and zod would double the first page, so
 * these few combinators check exactly the fields the views read.
 */
export type Guard<T> = (value: unknown) => value is T;

export type Record_ = Record<string, unknown>;

export const isRecord = (value: unknown): value is Record_ =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

export const isString: Guard<string> = (v): v is string => typeof v === 'string';
export const isNumber: Guard<number> = (v): v is number => typeof v === 'number' && Number.isFinite(v);
export const isBoolean: Guard<boolean> = (v): v is boolean => typeof v === 'boolean';
export const isUnknown: Guard<unknown> = (_v): _v is unknown => true;

export function nullable<T>(guard: Guard<T>): Guard<T | null> {
  return (v): v is T | null => v === null || guard(v);
}

/** Absent (undefined) or of `guard`: for fields added later or optional in the contract. */
export function optional<T>(guard: Guard<T>): Guard<T | undefined> {
  return (v): v is T | undefined => v === undefined || guard(v);
}

export function arrayOf<T>(guard: Guard<T>): Guard<T[]> {
  return (v): v is T[] => Array.isArray(v) && v.every((item) => guard(item));
}

export function oneOf<const T extends readonly string[]>(values: T): Guard<T[number]> {
  return (v): v is T[number] => typeof v === 'string' && values.includes(v);
}

type Shape = Record<string, Guard<unknown>>;
type FieldOf<G> = G extends Guard<infer T> ? T : never;
type OptionalKeys<S extends Shape> = { [K in keyof S]: undefined extends FieldOf<S[K]> ? K : never }[keyof S];
/** The type a shape guards; fields whose guard accepts undefined are optional. */
export type ShapeOf<S extends Shape> = { [K in Exclude<keyof S, OptionalKeys<S>>]: FieldOf<S[K]> } & {
  [K in OptionalKeys<S>]?: FieldOf<S[K]>;
};

/** An object with at least these fields, each of its guard's type; other fields are allowed (and kept). */
export function shape<S extends Shape>(fields: S): Guard<ShapeOf<S>> {
  return (v): v is ShapeOf<S> => isRecord(v) && Object.entries(fields).every(([key, guard]) => guard(v[key]));
}
