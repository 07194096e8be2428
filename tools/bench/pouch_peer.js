// pouch_peer.js -- the CouchDB-style peer of tools/bench/peers.py: a PouchDB
// server (express-pouchdb over LevelDB) and PouchDB clients (LevelDB on disk,
// as a device would keep them), driven by peers.py.
//
//   node pouch_peer.js server DIR DOCS.ndjson     load DOCS into DIR/crm (once),
//                                                 serve it on 127.0.0.1, print
//                                                 "listening PORT", run until killed
//   node pouch_peer.js client DIR                 read commands (JSON lines) on
//                                                 stdin, answer one JSON line each
//
// Client commands (every answer carries "seconds", timed inside this process:
// node's start and module loading are not counted):
//   {"op":"bootstrap","name":N,"url":U,"scope":S|null}  pull replication of U into
//        the device database N (a territory: the documents of scope S and the
//        catalogue, through the server-side filter crm/scope)
//   {"op":"push","name":N,"url":U}                push replication (after a bootstrap:
//        gives the push direction its checkpoint, as a device in use has)
//   {"op":"clone","from":T,"name":N,"url":U,"scope":S}  a second device of T's territory
//   {"op":"edit","name":N,"edits":[[id, field, value], ...]}  local edits
//   {"op":"sync","name":N,"url":U,"scope":S|null}  push, then pull (one sync)
//   {"op":"count","name":N}                       documents held
// Needs pouchdb, express-pouchdb and express (NODE_PATH points at them;
// peers.py installs them with npm into a cache directory, never the repo).
'use strict';
const fs = require('fs');
const path = require('path');
const readline = require('readline');
const PouchDB = require('pouchdb');

const BATCH = 1000;   // replication batch_size (PouchDB's default is 100)

function now() { return Number(process.hrtime.bigint()) / 1e9; }

async function server(dir, docsFile) {
  const express = require('express');
  const Pdb = PouchDB.defaults({ prefix: dir + path.sep });
  const db = new Pdb('crm');
  const info = await db.info();
  if (info.doc_count === 0) {
    const t0 = now();
    const rl = readline.createInterface({ input: fs.createReadStream(docsFile), crlfDelay: Infinity });
    let batch = [], n = 0;
    for await (const line of rl) {
      if (!line) continue;
      batch.push(JSON.parse(line));
      if (batch.length === 2000) { await db.bulkDocs(batch); n += batch.length; batch = []; }
    }
    if (batch.length) { await db.bulkDocs(batch); n += batch.length; }
    await db.put({
      _id: '_design/crm',
      filters: { scope: 'function (doc, req) { return doc._deleted || doc.scope === "" || ' +
                        'doc.scope === req.query.scope || doc._id.indexOf("_design/") === 0; }' },
    });
    process.stderr.write(`pouch server: loaded ${n} documents in ${(now() - t0).toFixed(1)} s\n`);
  }
  const app = express();
  app.use('/', require('express-pouchdb')(Pdb, { mode: 'minimumForPouchDB', logPath: path.join(dir, 'log.txt') }));
  const srv = app.listen(0, '127.0.0.1', () => {
    process.stdout.write(`listening ${srv.address().port}\n`);
  });
}

async function client(dir) {
  const dbs = new Map();
  const ids = new Map();   // device name -> instance id given to a clone
  const open = (name) => {
    if (!dbs.has(name)) {
      const db = new PouchDB(path.join(dir, name));
      if (ids.has(name)) db._id = (cb) => cb(null, ids.get(name));
      dbs.set(name, db);
    }
    return dbs.get(name);
  };
  const pullOpts = (scope) => {
    const o = { batch_size: BATCH, batches_limit: 10 };
    if (scope) { o.filter = 'crm/scope'; o.query_params = { scope }; }
    return o;
  };
  // The replication id PouchDB derives (generateReplicationId in pouchdb's
  // lib/index.js): md5 of source id, target id, filter and query params.
  const repId = async (src, tgt, opts) => {
    const q = (await src.id()) + (await tgt.id()) + (opts.filter || '') +
              (opts.filter && opts.query_params ? JSON.stringify(opts.query_params) : '');
    return '_local/' + require('crypto').createHash('md5').update(q, 'binary').digest('base64')
      .replace(/\//g, '.').replace(/\+/g, '_');
  };
  const moveCheckpoint = async (holder, oldId, newId) => {
    const doc = await holder.get(oldId);
    delete doc._rev;
    doc._id = newId;
    await holder.put(doc);
  };
  const handle = async (c) => {
    if (c.op === 'clone') {
      // A device of the same territory, set up without a second full
      // replication (setup only, not measured): copy the bootstrapped
      // database, give the copy its own instance id (its own replication
      // ids, so no two devices share a checkpoint), and carry the template's
      // checkpoints over to the new ids on both sides, as if the copy had
      // bootstrapped itself.
      const t0 = now();
      const tpl = open(c.from);
      const remote = new PouchDB(c.url);
      const pull = pullOpts(c.scope), push = {};
      const oldPull = await repId(remote, tpl, pull), oldPush = await repId(tpl, remote, push);
      await tpl.close();
      dbs.delete(c.from);
      fs.cpSync(path.join(dir, c.from), path.join(dir, c.name), { recursive: true });
      const db = open(c.name);
      await db.info();
      const uid = 'device-' + c.name;
      db._id = (cb) => cb(null, uid);
      ids.set(c.name, uid);
      const newPull = await repId(remote, db, pull), newPush = await repId(db, remote, push);
      await moveCheckpoint(db, oldPull, newPull);
      await moveCheckpoint(remote, oldPull, newPull);
      await moveCheckpoint(db, oldPush, newPush);
      await moveCheckpoint(remote, oldPush, newPush);
      return { seconds: now() - t0 };
    }
    const db = c.name ? open(c.name) : null;
    const t0 = now();
    if (c.op === 'bootstrap') {
      const r = await PouchDB.replicate(c.url, db, pullOpts(c.scope));
      return { seconds: now() - t0, docs_written: r.docs_written };
    }
    if (c.op === 'push') {
      const p = await PouchDB.replicate(db, c.url, { batch_size: BATCH, batches_limit: 10 });
      return { seconds: now() - t0, docs_written: p.docs_written };
    }
    if (c.op === 'edit') {
      for (const [id, field, value] of c.edits) {
        const doc = await db.get(id);
        doc[field] = value;
        await db.put(doc);
      }
      return { seconds: now() - t0, edited: c.edits.length };
    }
    if (c.op === 'sync') {
      const p = await PouchDB.replicate(db, c.url, { batch_size: BATCH, batches_limit: 10 });
      const r = await PouchDB.replicate(c.url, db, pullOpts(c.scope));
      return { seconds: now() - t0, pushed: p.docs_written, pulled: r.docs_written };
    }
    if (c.op === 'count') {
      const info = await db.info();
      return { seconds: now() - t0, doc_count: info.doc_count };
    }
    throw new Error('unknown op ' + c.op);
  };
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of rl) {
    if (!line.trim()) continue;
    let out;
    try {
      out = await handle(JSON.parse(line));
      out.ok = true;
    } catch (e) {
      out = { ok: false, error: String(e && (e.stack || e.message || e)) };
    }
    process.stdout.write(JSON.stringify(out) + '\n');
  }
  for (const db of dbs.values()) await db.close();
}

const [mode, a1, a2] = process.argv.slice(2);
(mode === 'server' ? server(a1, a2) : mode === 'client' ? client(a1) : Promise.reject(new Error('usage')))
  .catch((e) => { process.stderr.write(String(e && (e.stack || e)) + '\n'); process.exit(1); });
