/**
 * The GraphQL pre-pass: a budget checked on the query text before graphql-js validates it (some of graphql-js's rules
 * are quadratic; the depth rule this replaces followed fragment spreads without memoising them, so that forty
 * fragments each spreading the previous one twice froze the server) and before anything is executed.
 *
 * 1. Lexing, with graphql-js's own lexer (iterative): at most `maxTokens` tokens, at most `maxNesting` open brackets
 *    at once (so that the recursive-descent parser cannot run out of stack), at most `maxDirectives` directives.
 * 2. Parsing, with graphql-js's `parse` and its `maxTokens` option.
 * 3. Counting definitions: at most `maxOperations` operations, `maxFragments` fragments, `maxVariables` variables per
 *    operation; and repeated fields with sub-selections, written, over the document.
 * 4. A walk of each operation through its fragments, each fragment's figures computed once (memoised): fragment cycles
 *    are refused, and per operation at most `maxFields` data fields after expansion (what the cost limit always
 *    counted: aliases and repeats count, introspection does not), `maxSelections` selections of any kind after
 *    expansion (introspection, fragment spreads and inline fragments included: what graphql-js's rules and the
 *    executor walk), `maxAliases` aliases after expansion (`maxIntrospectionAliases` of them under __schema/__type),
 *    data depth `maxDepth` (introspection excluded, as before), and `maxNesting` levels of selections through
 *    fragments. Counting stops at the first figure over its budget. Besides, at most `maxRepeatedFields` fields with
 *    sub-selections repeat a name in their selection set (what makes graphql-js's overlap check quadratic).
 *
 * The work is linear in the size of the document (times its nesting, for inline fragments), whatever the document:
 * each fragment is visited once, so forty fragments spreading the previous one twice (2^40 fields once expanded) cost
 * forty fragment visits at most.
 */
import { GraphQLError, Kind, Lexer, parse, Source, TokenKind, visit, type DocumentNode, type FragmentDefinitionNode, type OperationDefinitionNode, type SelectionSetNode } from 'graphql';

export interface GraphqlLimits {
  /** Tokens in the document (graphql-js lexer tokens; comments do not count). */
  maxTokens: number;
  /** Open brackets at once in the text, and levels of selections (fields, fragment spreads, inline fragments) through fragments. */
  maxNesting: number;
  /** Field levels of a data query (introspection has graphql-js's own MaxIntrospectionDepthRule). */
  maxDepth: number;
  /** Data fields selected by one operation once fragments are expanded (introspection excluded; __typename counts). */
  maxFields: number;
  /** Selections of any kind in one operation once fragments are expanded, introspection included. */
  maxSelections: number;
  /** Aliased fields in one operation once fragments are expanded. */
  maxAliases: number;
  /**
   * Aliased fields on or under __schema and __type in one operation, fragments expanded: aliases are what multiply
   * the executor's work over the schema (the standard introspection query has none).
   */
  maxIntrospectionAliases: number;
  /**
   * Fields with sub-selections that repeat a response name already selected in the same selection set (inline
   * fragments included), over the whole document: graphql-js's OverlappingFieldsCanBeMerged compares such fields pairwise
   * and recursively, which is quadratic in the repeats at every level.
   */
  maxRepeatedFields: number;
  /** Operations in one document. */
  maxOperations: number;
  /** Fragment definitions in one document. */
  maxFragments: number;
  /** Variable definitions of one operation. */
  maxVariables: number;
  /** Directives written in the document. */
  maxDirectives: number;
  /** Wall-clock budget of a request's resolvers, in milliseconds. */
  timeoutMs: number;
}

export const DEFAULT_GRAPHQL_LIMITS: GraphqlLimits = {
  maxTokens: 5_000,
  maxNesting: 32,
  maxDepth: 6,
  maxFields: 200,
  maxSelections: 500,
  maxAliases: 100,
  maxIntrospectionAliases: 5,
  maxRepeatedFields: 10,
  maxOperations: 10,
  maxFragments: 50,
  maxVariables: 50,
  maxDirectives: 50,
  timeoutMs: 5_000,
};

/** The limits with defaults filled in; nesting is always at least three times the depth, so that depth decides. */
export function resolveLimits(partial: Partial<GraphqlLimits> = {}): GraphqlLimits {
  const defined = Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined)) as Partial<GraphqlLimits>;
  const l = { ...DEFAULT_GRAPHQL_LIMITS, ...defined };
  if (defined.maxNesting === undefined) l.maxNesting = Math.max(DEFAULT_GRAPHQL_LIMITS.maxNesting, 3 * l.maxDepth);
  for (const [k, v] of Object.entries(l)) if (!Number.isInteger(v) || v < 1) throw new TypeError(`GraphQL limit ${k} must be a positive integer, not ${v}`);
  return l;
}

/** A refusal by the pre-pass: a GraphQL error with a code, answered with HTTP 400 and `data: null`. */
export class BudgetError extends GraphQLError {
  readonly statusCode = 400;
  constructor(message: string, code: string) {
    super(message, { extensions: { code } });
  }
}

const INTROSPECTION_ROOTS = new Set(['__schema', '__type']);
/** Counts stay finite and exact enough: anything this large is over every budget. */
const CAP = 2 ** 50;
const add = (a: number, b: number) => Math.min(CAP, a + b);

interface Figures {
  /** Data fields (introspection subtrees excluded). */
  fields: number;
  /** Every selection: fields, fragment spreads, inline fragments. */
  selections: number;
  aliases: number;
  /** Aliases on or under __schema and __type. */
  introspectionAliases: number;
  /** Data depth: field levels, introspection subtrees excluded. */
  depth: number;
  /** Levels of selections of any kind. */
  height: number;
}

/** Step 1: the tokens, bracket nesting and directives, counted with graphql-js's lexer before anything is parsed. */
function lex(source: Source, limits: GraphqlLimits): void {
  const lexer = new Lexer(source);
  let tokens = 0;
  let open = 0;
  let directives = 0;
  for (let t = lexer.advance(); t.kind !== TokenKind.EOF; t = lexer.advance()) {
    if (++tokens > limits.maxTokens) throw new BudgetError(`query too large: more than ${limits.maxTokens} tokens`, 'QUERY_TOO_LARGE');
    if (t.kind === TokenKind.BRACE_L || t.kind === TokenKind.BRACKET_L || t.kind === TokenKind.PAREN_L) {
      if (++open > limits.maxNesting) throw new BudgetError(`query nested too deeply: more than ${limits.maxNesting} brackets open at once`, 'QUERY_TOO_DEEP');
    } else if (t.kind === TokenKind.BRACE_R || t.kind === TokenKind.BRACKET_R || t.kind === TokenKind.PAREN_R) {
      open = Math.max(0, open - 1);
    } else if (t.kind === TokenKind.AT) {
      if (++directives > limits.maxDirectives) throw new BudgetError(`too many directives: more than ${limits.maxDirectives} in one document`, 'TOO_MANY_DIRECTIVES');
    }
  }
}

function parseFailed(err: unknown): BudgetError {
  const message = err instanceof GraphQLError ? err.message : 'Syntax Error: the document could not be parsed';
  return new BudgetError(message, 'GRAPHQL_PARSE_FAILED');
}

/**
 * Checks a query text against the limits and returns its document, or throws a {@link BudgetError}. Never throws
 * anything else for any string (a lexer or parser failure is GRAPHQL_PARSE_FAILED).
 */
export function checkQuery(text: string, limits: GraphqlLimits): DocumentNode {
  const source = new Source(text);
  let document: DocumentNode;
  try {
    lex(source, limits);
    document = parse(source, { maxTokens: limits.maxTokens });
  } catch (err) {
    if (err instanceof BudgetError) throw err;
    throw parseFailed(err);
  }
  checkDocument(document, limits);
  return document;
}

/** Steps 3 and 4, on a document from {@link checkQuery} (its nesting already bounded by the lexing). */
function checkDocument(document: DocumentNode, limits: GraphqlLimits): void {
  const operations: OperationDefinitionNode[] = [];
  const fragments = new Map<string, FragmentDefinitionNode>();
  let fragmentCount = 0;
  for (const d of document.definitions) {
    if (d.kind === Kind.OPERATION_DEFINITION) {
      operations.push(d);
      if (operations.length > limits.maxOperations) throw new BudgetError(`too many operations: more than ${limits.maxOperations} in one document`, 'TOO_MANY_OPERATIONS');
      if ((d.variableDefinitions?.length ?? 0) > limits.maxVariables) {
        throw new BudgetError(`too many variables: more than ${limits.maxVariables} in one operation`, 'TOO_MANY_VARIABLES');
      }
    } else if (d.kind === Kind.FRAGMENT_DEFINITION) {
      if (++fragmentCount > limits.maxFragments) throw new BudgetError(`too many fragments: more than ${limits.maxFragments} in one document`, 'TOO_MANY_FRAGMENTS');
      if (!fragments.has(d.name.value)) fragments.set(d.name.value, d); // a repeated name is graphql-js's UniqueFragmentNames to report
    }
  }

  // Repeats, as graphql-js's OverlappingFieldsCanBeMerged sees them: every selection set with its inline fragments.
  let repeats = 0;
  const collect = (set: SelectionSetNode, seen: Set<string>) => {
    for (const sel of set.selections) {
      if (sel.kind === Kind.FIELD && sel.selectionSet) {
        const key = sel.alias?.value ?? sel.name.value;
        if (!seen.has(key)) seen.add(key);
        else if (++repeats > limits.maxRepeatedFields) {
          throw new BudgetError(
            `too many repeated fields: more than ${limits.maxRepeatedFields} fields with sub-selections repeat a name already selected in the same selection set (here "${key}"); merge their sub-selections`,
            'TOO_MANY_REPEATED_FIELDS',
          );
        }
      } else if (sel.kind === Kind.INLINE_FRAGMENT) {
        collect(sel.selectionSet, seen);
      }
    }
  };
  visit(document, { SelectionSet: (set) => collect(set, new Set()) });

  const memo = new Map<string, Figures>();
  const visiting: string[] = [];

  const tooDeep = () => new BudgetError(`query nested too deeply: more than ${limits.maxNesting} levels of selections, fragments included`, 'QUERY_TOO_DEEP');
  // Every figure of a fragment or an operation being walked is a lower bound of the operation's own: over a budget here
  // is over it there, so the walk stops at once.
  const over = (f: Figures) => {
    if (f.fields > limits.maxFields) throw new BudgetError(`query too costly: more than ${limits.maxFields} fields selected`, 'QUERY_TOO_COSTLY');
    if (f.selections > limits.maxSelections) {
      throw new BudgetError(`query too costly: more than ${limits.maxSelections} selections once fragments are expanded`, 'QUERY_TOO_COSTLY');
    }
    if (f.aliases > limits.maxAliases) throw new BudgetError(`too many aliases: more than ${limits.maxAliases} in one operation`, 'TOO_MANY_ALIASES');
    if (f.introspectionAliases > limits.maxIntrospectionAliases) {
      throw new BudgetError(`too many aliases in introspection: more than ${limits.maxIntrospectionAliases} on or under __schema and __type in one operation`, 'TOO_MANY_ALIASES');
    }
  };

  /** The figures of a selection set whose selections sit at `level` (1 for an operation's own). */
  const walk = (set: SelectionSetNode, level: number, introspection: boolean): Figures => {
    if (level > limits.maxNesting) throw tooDeep();
    const acc: Figures = { fields: 0, selections: 0, aliases: 0, introspectionAliases: 0, depth: 0, height: 0 };
    for (const sel of set.selections) {
      let child: Figures | undefined;
      acc.selections = add(acc.selections, 1);
      if (sel.kind === Kind.FIELD) {
        const inIntrospection = introspection || INTROSPECTION_ROOTS.has(sel.name.value);
        if (sel.alias) acc.aliases = add(acc.aliases, 1);
        if (sel.alias && inIntrospection) acc.introspectionAliases = add(acc.introspectionAliases, 1);
        if (!inIntrospection) acc.fields = add(acc.fields, 1);
        child = sel.selectionSet ? walk(sel.selectionSet, level + 1, inIntrospection) : undefined;
        if (!inIntrospection) acc.depth = Math.max(acc.depth, 1 + (child?.depth ?? 0));
      } else if (sel.kind === Kind.INLINE_FRAGMENT) {
        child = walk(sel.selectionSet, level + 1, introspection);
        acc.depth = Math.max(acc.depth, child.depth);
      } else {
        const name = sel.name.value;
        const f = fragments.get(name);
        if (!f) continue; // unknown: graphql-js's KnownFragmentNames reports it
        if (visiting.includes(name)) {
          const cycle = [...visiting.slice(visiting.indexOf(name)), name].join(' → ');
          throw new BudgetError(`fragment cycle: ${cycle}`, 'FRAGMENT_CYCLE');
        }
        // A fragment's figures do not depend on where it is spread, except that under __schema or __type nothing
        // counts as data: those are kept apart.
        const key = introspection ? `${name}\u0000i` : name;
        child = memo.get(key);
        if (child) {
          if (level + child.height > limits.maxNesting) throw tooDeep();
        } else {
          visiting.push(name);
          child = walk(f.selectionSet, level + 1, introspection);
          visiting.pop();
          memo.set(key, child);
        }
        acc.depth = Math.max(acc.depth, child.depth);
      }
      if (child) {
        acc.fields = add(acc.fields, child.fields);
        acc.selections = add(acc.selections, child.selections);
        acc.aliases = add(acc.aliases, child.aliases);
        acc.introspectionAliases = add(acc.introspectionAliases, child.introspectionAliases);
      }
      acc.height = Math.max(acc.height, 1 + (child?.height ?? 0));
      over(acc);
    }
    return acc;
  };

  for (const op of operations) {
    const f = walk(op.selectionSet, 1, false);
    if (f.depth > limits.maxDepth) throw new BudgetError(`query too deep: depth ${f.depth} is over the limit of ${limits.maxDepth}`, 'QUERY_TOO_DEEP');
  }
}
