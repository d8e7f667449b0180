// A schema-less GraphQL executor for the fake GitHub. gh's strict decoder rejects any field it did not
// ask for, so the answer must be exactly the query's selection: the query is parsed with graphql-js
// (`parse` only) and walked over an object graph. Fields are plain values or resolver functions that take
// the field's arguments; aliases, inline fragments, fragment spreads, variables and variable defaults are
// honoured. A field the graph does not know is answered with null and reported in `unknownFields`.
import {
  type ArgumentNode,
  type DocumentNode,
  type FragmentDefinitionNode,
  Kind,
  type OperationDefinitionNode,
  parse,
  type SelectionSetNode,
  type ValueNode,
} from 'graphql';

export type GraphArgs = Record<string, unknown>;
/** A node of the object graph: `__typename` plus fields that are values or `(args) => value`. */
export type GraphObject = { __typename: string } & Record<string, unknown>;

/** Throw from a resolver to produce GitHub's NOT_FOUND error with a null field. */
export class GraphNotFound extends Error {}

export interface GraphQLError {
  type?: string;
  path?: Array<string | number>;
  message: string;
}

export interface GraphQLResult {
  operationName: string | null;
  data: Record<string, unknown> | null;
  errors: GraphQLError[];
  unknownFields: string[];
}

export function isGraphObject(value: unknown): value is GraphObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && '__typename' in value;
}

/** A GitHub-style connection over a list, honouring first/last/after/before with cursors `c<index>`. */
export function connection(items: readonly unknown[], args: GraphArgs, typename = 'Connection'): GraphObject {
  let start = 0;
  let end = items.length;
  const after = cursorIndex(args.after);
  const before = cursorIndex(args.before);
  if (after !== null) start = after + 1;
  if (before !== null) end = Math.min(end, before);
  if (typeof args.first === 'number') end = Math.min(end, start + args.first);
  if (typeof args.last === 'number') start = Math.max(start, end - args.last);
  const nodes = items.slice(start, end);
  return {
    __typename: typename,
    nodes,
    edges: nodes.map((node, i) => ({ __typename: 'Edge', node, cursor: `c${start + i}` })),
    totalCount: items.length,
    pageInfo: {
      __typename: 'PageInfo',
      hasNextPage: end < items.length,
      hasPreviousPage: start > 0,
      startCursor: nodes.length > 0 ? `c${start}` : null,
      endCursor: nodes.length > 0 ? `c${end - 1}` : null,
    },
  };
}

function cursorIndex(cursor: unknown): number | null {
  if (typeof cursor !== 'string') return null;
  const m = /^c(\d+)$/.exec(cursor);
  return m?.[1] === undefined ? null : Number(m[1]);
}

export function executeGraphQL(
  root: GraphObject,
  query: string,
  variables: GraphArgs,
  operationName: string | null,
): GraphQLResult {
  let doc: DocumentNode;
  try {
    doc = parse(query);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    return { operationName, data: null, errors: [{ message: `Parse error: ${message}` }], unknownFields: [] };
  }
  const operations = doc.definitions.filter(
    (d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION,
  );
  const op = operationName === null ? operations[0] : operations.find((o) => o.name?.value === operationName);
  if (op === undefined) {
    return { operationName, data: null, errors: [{ message: 'No operation to run' }], unknownFields: [] };
  }
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const d of doc.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d);

  const vars: GraphArgs = {};
  for (const def of op.variableDefinitions ?? []) {
    const name = def.variable.name.value;
    if (name in variables) vars[name] = variables[name];
    else if (def.defaultValue) vars[name] = argumentValue(def.defaultValue, {});
    else vars[name] = null;
  }
  const run = new Run(fragments, vars);
  const data = run.selectionSet(root, op.selectionSet, []);
  return { operationName: op.name?.value ?? null, data, errors: run.errors, unknownFields: [...run.unknown] };
}

class Run {
  readonly errors: GraphQLError[] = [];
  readonly unknown = new Set<string>();

  constructor(
    private readonly fragments: Map<string, FragmentDefinitionNode>,
    private readonly vars: GraphArgs,
  ) {}

  selectionSet(
    obj: GraphObject,
    set: SelectionSetNode,
    path: Array<string | number>,
  ): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const sel of set.selections) {
      if (sel.kind === Kind.FIELD) {
        const name = sel.name.value;
        const key = sel.alias?.value ?? name;
        if (name === '__typename') {
          out[key] = obj.__typename;
          continue;
        }
        if (!(name in obj)) {
          this.unknown.add(`${obj.__typename}.${name}`);
          out[key] = null;
          continue;
        }
        let value = obj[name];
        if (typeof value === 'function') {
          try {
            value = (value as (args: GraphArgs) => unknown)(this.args(sel.arguments ?? []));
          } catch (err) {
            if (!(err instanceof GraphNotFound)) throw err;
            this.errors.push({ type: 'NOT_FOUND', path: [...path, key], message: err.message });
            out[key] = null;
            continue;
          }
        }
        mergeInto(out, key, this.complete(value, sel.selectionSet, [...path, key]));
      } else if (sel.kind === Kind.INLINE_FRAGMENT) {
        const type = sel.typeCondition?.name.value;
        if (type === undefined || type === obj.__typename) {
          mergeObjects(out, this.selectionSet(obj, sel.selectionSet, path));
        }
      } else {
        const fragment = this.fragments.get(sel.name.value);
        if (fragment && fragment.typeCondition.name.value === obj.__typename) {
          mergeObjects(out, this.selectionSet(obj, fragment.selectionSet, path));
        }
      }
    }
    return out;
  }

  private complete(value: unknown, set: SelectionSetNode | undefined, path: Array<string | number>): unknown {
    if (value === null || value === undefined) return null;
    if (Array.isArray(value)) return value.map((item, i) => this.complete(item, set, [...path, i]));
    if (set !== undefined && isGraphObject(value)) return this.selectionSet(value, set, path);
    if (set !== undefined && typeof value === 'object') {
      return this.selectionSet({ __typename: 'Object', ...value }, set, path);
    }
    return value;
  }

  private args(nodes: readonly ArgumentNode[]): GraphArgs {
    const out: GraphArgs = {};
    for (const arg of nodes) out[arg.name.value] = argumentValue(arg.value, this.vars);
    return out;
  }
}

function argumentValue(node: ValueNode, vars: GraphArgs): unknown {
  switch (node.kind) {
    case Kind.VARIABLE:
      return vars[node.name.value] ?? null;
    case Kind.INT:
      return Number.parseInt(node.value, 10);
    case Kind.FLOAT:
      return Number.parseFloat(node.value);
    case Kind.STRING:
    case Kind.ENUM:
      return node.value;
    case Kind.BOOLEAN:
      return node.value;
    case Kind.NULL:
      return null;
    case Kind.LIST:
      return node.values.map((v) => argumentValue(v, vars));
    case Kind.OBJECT: {
      const out: GraphArgs = {};
      for (const field of node.fields) out[field.name.value] = argumentValue(field.value, vars);
      return out;
    }
  }
}

function isPlainRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function mergeInto(out: Record<string, unknown>, key: string, value: unknown): void {
  const existing = out[key];
  if (isPlainRecord(existing) && isPlainRecord(value)) mergeObjects(existing, value);
  else out[key] = value;
}

function mergeObjects(target: Record<string, unknown>, source: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(source)) mergeInto(target, key, value);
}
