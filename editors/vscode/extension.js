// The rubric extension: starts `rubric lsp` (the language server, over standard input and
// output) for every `.policy` file. Highlighting comes from syntaxes/rubric.tmLanguage.json.
'use strict';

const vscode = require('vscode');
const { LanguageClient } = require('vscode-languageclient/node');

let client;

function activate(context) {
  const config = vscode.workspace.getConfiguration('rubric');
  const command = config.get('server.path') || 'rubric';
  const stdlibDir = config.get('server.stdlibDir') || '';
  const args = ['lsp'];
  if (stdlibDir) {
    args.push('--stdlib-dir', stdlibDir);
  }
  const serverOptions = { command, args };
  const clientOptions = {
    documentSelector: [
      { scheme: 'file', language: 'rubric' },
      { scheme: 'untitled', language: 'rubric' },
    ],
  };
  client = new LanguageClient('rubric', 'Rubric language server', serverOptions, clientOptions);
  client.start();
  context.subscriptions.push({ dispose: () => client && client.stop() });
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
