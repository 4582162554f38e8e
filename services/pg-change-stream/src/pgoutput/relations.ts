/**
 * Relation metadata as pgoutput announces it, kept current across Relation messages, with the type name of every
 * column resolved.
 *
 * pgoutput describes a column by type OID and typmod only. Builtin types are named from a table here, as
 * format_type() prints them, so most tables need no query. Any other (oid, typmod) is resolved once through an
 * injected asynchronous resolver: the caller awaits `prepare(message)` before handing a Relation message on, and
 * `prepare` returns undefined when nothing is missing, so decoding stays synchronous on the common path.
 *
 * Type ('Y') messages precede a Relation message for non-builtin column types. Their name is not used as the column
 * type name: for a domain pgoutput sends the base type's name, and an array of an enum arrives as "_mood", so
 * format_type() stays authoritative. A Type message whose name differs from the one seen before for that OID (a
 * renamed type) drops the names resolved for it, so the next Relation message resolves them again.
 */
import { KashoError } from '@kasho/common/errors';
import { ReplicaIdentity, type Column, type Relation } from '@kasho/common/gen/kasho/change_stream';
import type { PgoutputMessage, RelationMessage, ReplicaIdentityChar, TypeMessage } from './decoder.js';

export interface TypeRef {
  oid: number;
  typmod: number;
}

/**
 * Returns format_type(oid, typmod) for each entry, in order. Run it with an empty search_path so that every type
 * outside pg_catalog comes back schema-qualified ("public.mood", "public.mood[]"), independent of the session.
 */
export type TypeNameResolver = (types: readonly TypeRef[]) => Promise<readonly string[]>;

/** The schema pgoutput leaves empty. */
export const CATALOG_NAMESPACE = 'pg_catalog';

const SCALAR_TYPES: ReadonlyMap<number, string> = new Map([
  [16, 'boolean'],
  [17, 'bytea'],
  [18, '"char"'],
  [19, 'name'],
  [20, 'bigint'],
  [21, 'smallint'],
  [23, 'integer'],
  [24, 'regproc'],
  [25, 'text'],
  [26, 'oid'],
  [27, 'tid'],
  [28, 'xid'],
  [29, 'cid'],
  [114, 'json'],
  [142, 'xml'],
  [600, 'point'],
  [601, 'lseg'],
  [602, 'path'],
  [603, 'box'],
  [604, 'polygon'],
  [628, 'line'],
  [650, 'cidr'],
  [700, 'real'],
  [701, 'double precision'],
  [718, 'circle'],
  [774, 'macaddr8'],
  [790, 'money'],
  [829, 'macaddr'],
  [869, 'inet'],
  [1082, 'date'],
  [1790, 'refcursor'],
  [2202, 'regprocedure'],
  [2203, 'regoper'],
  [2204, 'regoperator'],
  [2205, 'regclass'],
  [2206, 'regtype'],
  [2950, 'uuid'],
  [2970, 'txid_snapshot'],
  [3220, 'pg_lsn'],
  [3614, 'tsvector'],
  [3615, 'tsquery'],
  [3734, 'regconfig'],
  [3769, 'regdictionary'],
  [3802, 'jsonb'],
  [3904, 'int4range'],
  [3906, 'numrange'],
  [3908, 'tsrange'],
  [3910, 'tstzrange'],
  [3912, 'daterange'],
  [3926, 'int8range'],
  [4072, 'jsonpath'],
  [4089, 'regnamespace'],
  [4096, 'regrole'],
  [4451, 'int4multirange'],
  [4532, 'nummultirange'],
  [4533, 'tsmultirange'],
  [4534, 'tstzmultirange'],
  [4535, 'datemultirange'],
  [4536, 'int8multirange'],
  [5038, 'pg_snapshot'],
  [5069, 'xid8'],
]);

/** Array type OID -> element type OID. */
const ARRAY_TYPES: ReadonlyMap<number, number> = new Map([
  [1000, 16],
  [1001, 17],
  [1002, 18],
  [1003, 19],
  [1016, 20],
  [1005, 21],
  [1007, 23],
  [1008, 24],
  [1009, 25],
  [1028, 26],
  [1010, 27],
  [1011, 28],
  [1012, 29],
  [199, 114],
  [143, 142],
  [1017, 600],
  [1018, 601],
  [1019, 602],
  [1020, 603],
  [1027, 604],
  [629, 628],
  [651, 650],
  [1021, 700],
  [1022, 701],
  [719, 718],
  [775, 774],
  [791, 790],
  [1040, 829],
  [1041, 869],
  [1182, 1082],
  [2201, 1790],
  [2207, 2202],
  [2208, 2203],
  [2209, 2204],
  [2210, 2205],
  [2211, 2206],
  [2951, 2950],
  [2949, 2970],
  [3221, 3220],
  [3643, 3614],
  [3645, 3615],
  [3735, 3734],
  [3770, 3769],
  [3807, 3802],
  [3905, 3904],
  [3907, 3906],
  [3909, 3908],
  [3911, 3910],
  [3913, 3912],
  [3927, 3926],
  [4073, 4072],
  [4090, 4089],
  [4097, 4096],
  [6150, 4451],
  [6151, 4532],
  [6152, 4533],
  [6153, 4534],
  [6155, 4535],
  [6157, 4536],
  [5039, 5038],
  [271, 5069],
  [1014, 1042],
  [1015, 1043],
  [1183, 1083],
  [1270, 1266],
  [1115, 1114],
  [1185, 1184],
  [1187, 1186],
  [1561, 1560],
  [1563, 1562],
  [1231, 1700],
]);

const VARHDRSZ = 4;

function precisionSuffix(typmod: number): string {
  return typmod >= 0 ? `(${typmod})` : '';
}

function lengthSuffix(typmod: number): string {
  return typmod > VARHDRSZ ? `(${typmod - VARHDRSZ})` : '';
}

/** format_type() of a builtin non-array type, following the special cases of format_type_extended(). */
function scalarTypeName(oid: number, typmod: number): string | undefined {
  const withTypmod = typmod >= 0;
  switch (oid) {
    case 1700: {
      if (!withTypmod) return 'numeric';
      const packed = typmod - VARHDRSZ;
      const precision = (packed >> 16) & 0xffff;
      // The scale is an 11-bit two's complement number since PostgreSQL 15 (negative scales).
      const scale = ((packed & 0x7ff) ^ 1024) - 1024;
      return `numeric(${precision},${scale})`;
    }
    case 1043:
      return `character varying${withTypmod ? lengthSuffix(typmod) : ''}`;
    case 1042:
      // Without a length bpchar is not CHARACTER, which would mean CHARACTER(1).
      return withTypmod ? `character${lengthSuffix(typmod)}` : 'bpchar';
    case 1560:
      // Same for bit: BIT alone means BIT(1).
      return withTypmod ? `bit(${typmod})` : '"bit"';
    case 1562:
      return `bit varying${precisionSuffix(typmod)}`;
    case 1083:
      return `time${precisionSuffix(typmod)} without time zone`;
    case 1266:
      return `time${precisionSuffix(typmod)} with time zone`;
    case 1114:
      return `timestamp${precisionSuffix(typmod)} without time zone`;
    case 1184:
      return `timestamp${precisionSuffix(typmod)} with time zone`;
    case 1186:
      // Interval modifiers combine fields and precision: left to the server.
      return withTypmod ? undefined : 'interval';
  }
  const name = SCALAR_TYPES.get(oid);
  // None of the remaining types takes a modifier; if one shows up anyway, the server knows best.
  return name !== undefined && !withTypmod ? name : undefined;
}

/** The name format_type(oid, typmod) gives a builtin type, or undefined when the server has to be asked. */
export function builtinTypeName(oid: number, typmod: number): string | undefined {
  const element = ARRAY_TYPES.get(oid);
  if (element === undefined) return scalarTypeName(oid, typmod);
  const elementName = scalarTypeName(element, typmod);
  return elementName === undefined ? undefined : `${elementName}[]`;
}

/** The OIDs builtinTypeName knows, for tests that compare it with a real server. */
export function builtinTypeOids(): number[] {
  return [
    ...SCALAR_TYPES.keys(),
    1043,
    1042,
    1560,
    1562,
    1083,
    1266,
    1114,
    1184,
    1186,
    1700,
    ...ARRAY_TYPES.keys(),
  ];
}

const REPLICA_IDENTITIES: Readonly<Record<ReplicaIdentityChar, ReplicaIdentity>> = {
  d: ReplicaIdentity.REPLICA_IDENTITY_DEFAULT,
  n: ReplicaIdentity.REPLICA_IDENTITY_NOTHING,
  f: ReplicaIdentity.REPLICA_IDENTITY_FULL,
  i: ReplicaIdentity.REPLICA_IDENTITY_INDEX,
};

function typeKey(oid: number, typmod: number): string {
  return `${oid}:${typmod}`;
}

function sameColumns(a: readonly Column[], b: readonly Column[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((column, i) => {
    const other = b[i];
    return (
      other !== undefined &&
      column.name === other.name &&
      column.typeOid === other.typeOid &&
      column.typeModifier === other.typeModifier &&
      column.typeName === other.typeName &&
      column.key === other.key
    );
  });
}

function sameDefinition(a: Relation, b: Relation): boolean {
  return (
    a.table?.schema === b.table?.schema &&
    a.table?.name === b.table?.name &&
    a.replicaIdentity === b.replicaIdentity &&
    sameColumns(a.columns, b.columns)
  );
}

export interface AppliedRelation {
  relation: Relation;
  /** A new version: the definition differs from the one known before (or none was known). */
  changed: boolean;
}

export class RelationCache {
  private readonly relations = new Map<number, Relation>();
  private readonly typeNames = new Map<string, string>();
  private readonly typeMessageNames = new Map<number, string>();

  constructor(private readonly resolveTypeNames: TypeNameResolver) {}

  /**
   * Seeds the definitions stored by an earlier run, so that an unchanged table keeps its version and a changed one
   * gets a version that was never used for another shape.
   */
  restore(relations: Iterable<Relation>): void {
    for (const relation of relations) {
      const known = this.relations.get(relation.relationId);
      if (!known || known.version < relation.version) this.relations.set(relation.relationId, relation);
    }
  }

  get(relationId: number): Relation | undefined {
    return this.relations.get(relationId);
  }

  /** The (oid, typmod) pairs of a Relation message that have no name yet, each once. */
  missingTypes(message: RelationMessage): TypeRef[] {
    const missing = new Map<string, TypeRef>();
    for (const column of message.columns) {
      const key = typeKey(column.typeOid, column.typeModifier);
      if (this.typeNames.has(key) || missing.has(key)) continue;
      if (builtinTypeName(column.typeOid, column.typeModifier) !== undefined) continue;
      missing.set(key, { oid: column.typeOid, typmod: column.typeModifier });
    }
    return [...missing.values()];
  }

  /**
   * Resolves the missing type names of a Relation message through the resolver, in one call. Returns undefined when
   * there is nothing to resolve (every other kind of message, and most Relation messages).
   */
  prepare(message: PgoutputMessage): Promise<void> | undefined {
    if (message.tag !== 'relation') return undefined;
    const missing = this.missingTypes(message);
    if (missing.length === 0) return undefined;
    return this.resolveTypeNames(missing).then((names) => {
      if (names.length !== missing.length) {
        throw new KashoError(
          `the type name resolver returned ${names.length} names for ${missing.length} types`,
          'This is a bug in pg-change-stream.',
        );
      }
      missing.forEach((ref, i) => this.typeNames.set(typeKey(ref.oid, ref.typmod), names[i] as string));
    });
  }

  applyType(message: TypeMessage): void {
    const name = `${message.namespace || CATALOG_NAMESPACE}.${message.name}`;
    const previous = this.typeMessageNames.get(message.typeOid);
    this.typeMessageNames.set(message.typeOid, name);
    if (previous === undefined || previous === name) return;
    const prefix = `${message.typeOid}:`;
    for (const key of [...this.typeNames.keys()]) {
      if (key.startsWith(prefix)) this.typeNames.delete(key);
    }
  }

  /** Records a Relation message; its missing type names must have been resolved with prepare(). */
  applyRelation(message: RelationMessage): AppliedRelation {
    const columns = message.columns.map((column): Column => {
      const typeName =
        builtinTypeName(column.typeOid, column.typeModifier) ??
        this.typeNames.get(typeKey(column.typeOid, column.typeModifier));
      if (typeName === undefined) {
        throw new KashoError(
          `the type of column ${column.name} of relation ${message.relationId} (type OID ${column.typeOid}) ` +
            'has no name yet',
          'This is a bug in pg-change-stream: prepare() must resolve type names before a Relation message is applied.',
        );
      }
      return {
        name: column.name,
        typeOid: column.typeOid,
        typeName,
        typeModifier: column.typeModifier,
        key: column.key,
      };
    });
    const known = this.relations.get(message.relationId);
    const candidate: Relation = {
      relationId: message.relationId,
      version: known?.version ?? 0,
      table: { schema: message.namespace || CATALOG_NAMESPACE, name: message.name },
      replicaIdentity: REPLICA_IDENTITIES[message.replicaIdentity],
      columns,
    };
    if (known && sameDefinition(known, candidate)) return { relation: known, changed: false };
    candidate.version += 1;
    this.relations.set(message.relationId, candidate);
    return { relation: candidate, changed: true };
  }
}
