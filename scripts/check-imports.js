#!/usr/bin/env node
// The import graph of src/, checked: no cycle between files, and every import between folders points
// down the folder order below (a folder may import its own files and the folders listed before it).
// Type-only imports count like any other: a type that has to be read from a higher folder is a sign
// that it lives in the wrong place. One named exception: src/deps.ts, the composition contract every
// part receives, may be imported (type-only) from anywhere.
//
//   node scripts/check-imports.js [rootDir]   exits 1 and names each offending import
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

// Lowest first. Folders on one line are peers: neither may import the other.
export const folderOrder = [
  // Vocabulary and basics: read by every part, import nothing of the project.
  ['model', 'telemetry', 'config'],
  ['resilience'],
  // Ports to what the service runs on.
  ['store', 'bus'],
  ['outbound'],
  ['tenants', 'audit'],
  // The agent side's systems, then the outbox that delivers to them and to bots.
  ['connectors'],
  ['delivery'],
  ['attachments'],
  ['routing'],
  // The domain and the application services that call it.
  ['handover'],
  ['desk', 'privacy'],
  ['monitoring'],
  // Ways in, and the composition.
  ['http'],
  ['demo'],
  ['service'],
  ['(root)'],
  ['cli'],
];

const typeOnlyFromAnywhere = new Set(['deps.ts']);

export function listImports(file) {
  const text = readFileSync(file, 'utf8');
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const found = [];
  const visit = (node) => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      let typeOnly;
      if (ts.isImportDeclaration(node)) {
        const clause = node.importClause;
        typeOnly =
          !!clause &&
          (clause.isTypeOnly ||
            (!clause.name &&
              !!clause.namedBindings &&
              ts.isNamedImports(clause.namedBindings) &&
              clause.namedBindings.elements.length > 0 &&
              clause.namedBindings.elements.every((e) => e.isTypeOnly)));
      } else {
        typeOnly = node.isTypeOnly;
      }
      found.push({ spec: node.moduleSpecifier.text, typeOnly, line: source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1 });
    } else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments[0] &&
      ts.isStringLiteral(node.arguments[0])
    ) {
      found.push({ spec: node.arguments[0].text, typeOnly: false, line: source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1 });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

function sourceFiles(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...sourceFiles(path));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') && !entry.name.endsWith('.test.ts')) out.push(path);
  }
  return out;
}

function resolveLocal(from, spec) {
  if (!spec.startsWith('.')) return null;
  const base = resolve(dirname(from), spec);
  for (const candidate of [base.replace(/\.js$/, '.ts'), base + '.ts', join(base, 'index.ts')]) if (existsSync(candidate)) return candidate;
  return null;
}

export function checkImports(root, order = folderOrder) {
  const rank = new Map();
  order.forEach((peers, i) => peers.forEach((f) => rank.set(f, i)));
  const folderOf = (file) => {
    const parts = relative(root, file).split(sep);
    return parts.length > 1 ? parts[0] : '(root)';
  };
  const problems = [];
  const graph = new Map();
  const files = sourceFiles(root);
  for (const file of files) {
    const edges = [];
    for (const imp of listImports(file)) {
      const target = resolveLocal(file, imp.spec);
      if (!target) continue;
      edges.push(target);
      const from = folderOf(file);
      const to = folderOf(target);
      if (from === to) continue;
      const where = `src/${relative(root, file)}:${imp.line}`;
      if (typeOnlyFromAnywhere.has(relative(root, target))) {
        if (!imp.typeOnly) problems.push(`${where} imports a value from src/${relative(root, target)}, which may be imported for its types only`);
        continue;
      }
      if (!rank.has(from) || !rank.has(to)) {
        problems.push(`${where}: folder ${!rank.has(from) ? from : to} has no place in the folder order (scripts/check-imports.js)`);
        continue;
      }
      if (rank.get(to) >= rank.get(from)) {
        problems.push(
          `${where} imports src/${relative(root, target)}: ${from} may not import ${to} (${rank.get(to) === rank.get(from) ? 'peers' : `${to} is above ${from}`})`,
        );
      }
    }
    graph.set(file, edges);
  }
  // Cycles between files (Tarjan's strongly connected components).
  let next = 0;
  const index = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const strong = (v) => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        strong(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), index.get(w)));
    }
    if (low.get(v) === index.get(v)) {
      const cycle = [];
      let w;
      do {
        w = stack.pop();
        onStack.delete(w);
        cycle.push(w);
      } while (w !== v);
      const selfLoop = cycle.length === 1 && (graph.get(v) ?? []).includes(v);
      if (cycle.length > 1 || selfLoop) problems.push(`import cycle between files: ${cycle.map((f) => `src/${relative(root, f)}`).join(' → ')}`);
    }
  };
  for (const file of files) if (!index.has(file)) strong(file);
  return problems;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = resolve(process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '..', 'src'));
  const problems = checkImports(root);
  for (const p of problems) console.error(p);
  if (problems.length > 0) {
    console.error(`\n${problems.length} import(s) break the folder order or close a cycle; the order and its reasons are in docs/architecture.md.`);
    process.exit(1);
  }
}
