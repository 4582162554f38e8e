import { expect } from 'chai';
import { ReplicaIdentity } from '@kasho/common/gen/kasho/change_stream';
import { decodePgoutput, type RelationMessage, type TypeMessage } from '../../../src/pgoutput/decoder.js';
import { RelationCache, builtinTypeName, type TypeRef } from '../../../src/pgoutput/relations.js';
import * as pg from './pgoutput-encoder.js';

const numericTypmod = (precision: number, scale: number) => ((precision << 16) | (scale & 0x7ff)) + 4;

function relationMessage(...args: Parameters<typeof pg.relation>): RelationMessage {
  return decodePgoutput(pg.relation(...args)) as RelationMessage;
}

function typeMessage(oid: number, namespace: string, name: string): TypeMessage {
  return decodePgoutput(pg.type(oid, namespace, name)) as TypeMessage;
}

/** A resolver standing in for format_type(): records every call. */
function recordingResolver(names: Record<string, string>) {
  const calls: TypeRef[][] = [];
  const resolve = async (types: readonly TypeRef[]) => {
    calls.push([...types]);
    return types.map((t) => names[`${t.oid}:${t.typmod}`] ?? `unknown_${t.oid}`);
  };
  return { calls, resolve };
}

async function apply(cache: RelationCache, message: RelationMessage) {
  await cache.prepare(message);
  return cache.applyRelation(message);
}

describe('builtinTypeName', () => {
  const cases: Array<[number, number, string | undefined]> = [
    [16, -1, 'boolean'],
    [18, -1, '"char"'],
    [20, -1, 'bigint'],
    [23, -1, 'integer'],
    [25, -1, 'text'],
    [700, -1, 'real'],
    [701, -1, 'double precision'],
    [1700, -1, 'numeric'],
    [1700, numericTypmod(30, 10), 'numeric(30,10)'],
    [1700, numericTypmod(5, 0), 'numeric(5,0)'],
    [1700, numericTypmod(5, -2), 'numeric(5,-2)'],
    [1043, -1, 'character varying'],
    [1043, 255 + 4, 'character varying(255)'],
    [1042, -1, 'bpchar'],
    [1042, 1 + 4, 'character(1)'],
    [1560, -1, '"bit"'],
    [1560, 3, 'bit(3)'],
    [1562, -1, 'bit varying'],
    [1562, 8, 'bit varying(8)'],
    [1083, -1, 'time without time zone'],
    [1083, 3, 'time(3) without time zone'],
    [1266, 0, 'time(0) with time zone'],
    [1114, -1, 'timestamp without time zone'],
    [1184, -1, 'timestamp with time zone'],
    [1184, 6, 'timestamp(6) with time zone'],
    [1186, -1, 'interval'],
    [1186, 0x7fff0003, undefined],
    [1009, -1, 'text[]'],
    [1015, 10 + 4, 'character varying(10)[]'],
    [1231, numericTypmod(10, 2), 'numeric(10,2)[]'],
    [1185, -1, 'timestamp with time zone[]'],
    [3807, -1, 'jsonb[]'],
    [2950, -1, 'uuid'],
    [3802, -1, 'jsonb'],
    [114, -1, 'json'],
    [3904, -1, 'int4range'],
    [23, 5, undefined],
    [16_400, -1, undefined],
  ];
  for (const [oid, typmod, name] of cases) {
    it(`names (${oid}, ${typmod}) ${name === undefined ? 'through the server' : name}`, () => {
      expect(builtinTypeName(oid, typmod)).to.equal(name);
    });
  }
});

describe('RelationCache', () => {
  const columns = [
    { name: 'id', typeOid: 20, key: true },
    { name: 'price', typeOid: 1700, typmod: numericTypmod(10, 2) },
    { name: 'mood', typeOid: 16_500 },
    { name: 'moods', typeOid: 16_499 },
    { name: 'other_mood', typeOid: 16_500 },
  ];
  const names = { '16500:-1': 'public.mood', '16499:-1': 'public.mood[]' };

  it('needs no resolver call for builtin types', () => {
    const { calls, resolve } = recordingResolver({});
    const cache = new RelationCache(resolve);
    const message = relationMessage(1, 'public', 't', [{ name: 'id', typeOid: 23, key: true }]);
    expect(cache.prepare(message)).to.equal(undefined);
    expect(cache.prepare(decodePgoutput(pg.begin(1n, 0n, 1)))).to.equal(undefined);
    const { relation, changed } = cache.applyRelation(message);
    expect(changed).to.equal(true);
    expect(relation).to.deep.equal({
      relationId: 1,
      version: 1,
      table: { schema: 'public', name: 't' },
      replicaIdentity: ReplicaIdentity.REPLICA_IDENTITY_DEFAULT,
      columns: [{ name: 'id', typeOid: 23, typeName: 'integer', typeModifier: -1, key: true }],
    });
    expect(calls).to.deep.equal([]);
  });

  it('resolves each unknown (oid, typmod) once, in one call, before the relation is applied', async () => {
    const { calls, resolve } = recordingResolver(names);
    const cache = new RelationCache(resolve);
    const message = relationMessage(2, 'public', 'feelings', columns);
    expect(() => cache.applyRelation(message)).to.throw(/has no name yet/);

    const { relation } = await apply(cache, message);
    expect(calls).to.deep.equal([
      [
        { oid: 16_500, typmod: -1 },
        { oid: 16_499, typmod: -1 },
      ],
    ]);
    expect(relation.columns.map((c) => c.typeName)).to.deep.equal([
      'bigint',
      'numeric(10,2)',
      'public.mood',
      'public.mood[]',
      'public.mood',
    ]);

    const again = relationMessage(3, 'public', 'more_feelings', columns);
    expect(cache.prepare(again)).to.equal(undefined);
    expect(cache.applyRelation(again).relation.columns[2]?.typeName).to.equal('public.mood');
    expect(calls).to.have.length(1);
  });

  it('maps replica identities and the empty namespace', () => {
    const cache = new RelationCache(recordingResolver({}).resolve);
    const expected = {
      d: ReplicaIdentity.REPLICA_IDENTITY_DEFAULT,
      n: ReplicaIdentity.REPLICA_IDENTITY_NOTHING,
      f: ReplicaIdentity.REPLICA_IDENTITY_FULL,
      i: ReplicaIdentity.REPLICA_IDENTITY_INDEX,
    } as const;
    let id = 10;
    for (const [char, identity] of Object.entries(expected)) {
      const relation = cache.applyRelation(
        relationMessage(id++, '', 't', [], char as keyof typeof expected),
      ).relation;
      expect(relation.replicaIdentity).to.equal(identity);
      expect(relation.table).to.deep.equal({ schema: 'pg_catalog', name: 't' });
    }
  });

  it('keeps the version for an identical Relation message and bumps it on every change', () => {
    const cache = new RelationCache(recordingResolver({}).resolve);
    const base = [
      { name: 'id', typeOid: 23, key: true },
      { name: 'name', typeOid: 25 },
    ];
    const first = cache.applyRelation(relationMessage(1, 'public', 't', base));
    expect(first).to.include({ changed: true });
    expect(first.relation.version).to.equal(1);

    const same = cache.applyRelation(relationMessage(1, 'public', 't', base));
    expect(same).to.deep.equal({ relation: first.relation, changed: false });

    const changes: Array<Parameters<typeof pg.relation>> = [
      [1, 'public', 't', [...base, { name: 'added', typeOid: 16 }]],
      [1, 'public', 't', base],
      [1, 'public', 't', [base[0]!, { name: 'name', typeOid: 1043, typmod: 54 }]],
      [1, 'public', 't', [base[0]!, { name: 'name', typeOid: 25, key: true }]],
      [1, 'public', 't', base, 'f'],
      [1, 'public', 'renamed', base, 'f'],
      [1, 'archive', 'renamed', base, 'f'],
    ];
    changes.forEach((args, i) => {
      const applied = cache.applyRelation(relationMessage(...args));
      expect(applied.changed, `change ${i}`).to.equal(true);
      expect(applied.relation.version, `change ${i}`).to.equal(i + 2);
    });
    expect(cache.get(1)?.table).to.deep.equal({ schema: 'archive', name: 'renamed' });
  });

  it('continues the versions of restored relations', () => {
    const cache = new RelationCache(recordingResolver({}).resolve);
    const message = relationMessage(1, 'public', 't', [{ name: 'id', typeOid: 23, key: true }]);
    const stored = {
      ...new RelationCache(recordingResolver({}).resolve).applyRelation(message).relation,
      version: 7,
    };
    cache.restore([{ ...stored, version: 6 }, stored]);
    expect(cache.applyRelation(message)).to.deep.equal({ relation: stored, changed: false });
    const changed = cache.applyRelation(
      relationMessage(1, 'public', 't', [
        { name: 'id', typeOid: 23, key: true },
        { name: 'x', typeOid: 25 },
      ]),
    );
    expect(changed.relation.version).to.equal(8);
  });

  it('asks again after a Type message shows the type was renamed', async () => {
    const { calls, resolve } = recordingResolver({ '16500:-1': 'public.mood' });
    const cache = new RelationCache(resolve);
    const message = relationMessage(2, 'public', 'feelings', [{ name: 'm', typeOid: 16_500 }]);
    cache.applyType(typeMessage(16_500, 'public', 'mood'));
    await apply(cache, message);
    cache.applyType(typeMessage(16_500, 'public', 'mood'));
    expect(cache.prepare(message)).to.equal(undefined);

    cache.applyType(typeMessage(16_500, 'public', 'feeling'));
    await apply(cache, message);
    expect(calls).to.have.length(2);
  });

  it('rejects a resolver answer of the wrong length', async () => {
    const cache = new RelationCache(async () => []);
    const message = relationMessage(2, 'public', 'feelings', [{ name: 'm', typeOid: 16_500 }]);
    let error: unknown;
    await cache.prepare(message)?.catch((e: unknown) => (error = e));
    expect(error)
      .to.be.instanceOf(Error)
      .with.property('message')
      .that.matches(/returned 0 names for 1 types/);
  });
});
