// The node types the editor knows, as one declarative table: the palette,
// the side panel's forms and the edge form are all built from it, so a new
// node type is a new entry here. A field names its config key (a dotted key
// reaches into an object: "auth.type" is config.auth.type) and its kind:
//   text, textarea, number, integer, checkbox, select (options), list (one
//   string per line), json (any JSON value, e.g. an object of headers).
// Config keys that no field names are kept as they are and shown in the
// form's "Other settings" JSON field.

const timeout = { key: 'timeout_seconds', label: 'Timeout (seconds)', kind: 'number', min: 0 };

export const nodeTypes = [
  {
    type: 'start', label: 'Start', about: 'Where the run begins; its inputs are the workflow variables.',
    fields: [],
  },
  {
    type: 'ai-processor', label: 'AI agent', about: 'An LLM agent: it answers its prompt, and may ask the other agents.',
    fields: [
      { key: 'name', label: 'Name', kind: 'text' },
      { key: 'system_prompt', label: 'System prompt', kind: 'textarea', rows: 3 },
      { key: 'prompt', label: 'Prompt', kind: 'textarea', rows: 5, hints: true },
      { key: 'model', label: 'Model', kind: 'text', placeholder: 'the server default' },
      { key: 'temperature', label: 'Temperature', kind: 'number', min: 0, max: 2, step: 0.1 },
      { key: 'max_tokens', label: 'Max tokens', kind: 'integer', min: 1 },
      { key: 'can_communicate', label: 'Can talk to other nodes (ask, broadcast, shared context)', kind: 'checkbox' },
      { key: 'tool_mode', label: 'Tool mode', kind: 'select', options: ['', 'native', 'text', 'auto'],
        optionLabels: { '': 'the server default', native: 'native tool calls', text: 'CALL: lines in the reply', auto: 'native when the model can' } },
      { key: 'tools', label: 'Tools it may call', kind: 'list', placeholder: 'one tool name or pattern per line' },
      timeout,
    ],
  },
  {
    type: 'http', label: 'HTTP request', about: 'Calls a URL and passes the answer on.',
    aliases: ['webhook'],
    fields: [
      { key: 'url', label: 'URL', kind: 'text', placeholder: 'https://…', hints: true },
      { key: 'method', label: 'Method', kind: 'select', options: ['', 'GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD'] },
      { key: 'headers', label: 'Headers (JSON object)', kind: 'json', rows: 3 },
      { key: 'params', label: 'Query parameters (JSON object)', kind: 'json', rows: 3 },
      { key: 'body', label: 'Body', kind: 'textarea', rows: 4, hints: true },
      { key: 'auth.type', label: 'Authentication', kind: 'select', options: ['', 'basic', 'bearer', 'api_key'] },
      { key: 'auth.username', label: 'User name (basic)', kind: 'text' },
      { key: 'auth.password', label: 'Password (basic)', kind: 'text' },
      { key: 'auth.token', label: 'Token (bearer)', kind: 'text' },
      { key: 'auth.header', label: 'Header (api_key)', kind: 'text', placeholder: 'X-API-Key' },
      { key: 'auth.key', label: 'Key (api_key)', kind: 'text' },
      timeout,
      { key: 'retries', label: 'Retries', kind: 'integer', min: 0 },
      { key: 'retry_delay', label: 'Delay between retries (seconds)', kind: 'number', min: 0 },
      { key: 'expected_status', label: 'Expected status', kind: 'json', rows: 1, placeholder: '200 or [200, 201]' },
    ],
  },
  {
    type: 'condition', label: 'Condition', about: 'Branches: its outgoing arrows carry "when" (true, false or a case).',
    branches: ['true', 'false'],
    fields: [{ key: 'condition', label: 'Expression', kind: 'textarea', rows: 3, hints: true }],
  },
  {
    type: 'filter', label: 'Filter', about: 'Lets the run go on only when the expression holds.',
    fields: [{ key: 'condition', label: 'Expression', kind: 'textarea', rows: 3, hints: true }],
  },
  {
    type: 'transformer', label: 'Transformer', about: 'Reshapes data with a template or an expression.',
    fields: [
      { key: 'template', label: 'Template', kind: 'textarea', rows: 4, hints: true },
      { key: 'expression', label: 'or an expression', kind: 'textarea', rows: 2, hints: true },
    ],
  },
  {
    type: 'delay', label: 'Delay', about: 'Waits before the run goes on.',
    fields: [{ key: 'seconds', label: 'Seconds', kind: 'number', min: 0 }],
  },
  {
    type: 'email', label: 'Email', about: 'Sends an email.',
    fields: [
      { key: 'to', label: 'To', kind: 'list', placeholder: 'one address per line' },
      { key: 'cc', label: 'Cc', kind: 'list' },
      { key: 'bcc', label: 'Bcc (in no header)', kind: 'list' },
      { key: 'from', label: 'From (else the server\'s --smtp-from)', kind: 'text' },
      { key: 'subject', label: 'Subject', kind: 'text', hints: true },
      { key: 'body', label: 'Body', kind: 'textarea', rows: 5, hints: true },
      { key: 'format', label: 'Format', kind: 'select', options: ['', 'text', 'html'] },
      { key: 'retries', label: 'Retries', kind: 'integer', min: 0 },
      { key: 'retry_delay', label: 'Delay between retries (seconds)', kind: 'number', min: 0 },
    ],
  },
  {
    type: 'human', label: 'Ask a person', about: 'Waits for a person to answer on the execution page.',
    fields: [
      { key: 'question', label: 'Question', kind: 'textarea', rows: 3, hints: true },
      { key: 'input', label: 'Answer with', kind: 'select', options: ['', 'text', 'choice'] },
      { key: 'choices', label: 'Choices', kind: 'list', placeholder: 'one choice per line' },
      { key: 'timeout_seconds', label: 'Timeout (seconds)', kind: 'number', min: 0 },
      { key: 'default', label: 'Default answer', kind: 'text' },
    ],
  },
  {
    type: 'end', label: 'End', about: 'Where the run ends; its output is the output of the nodes before it.',
    fields: [],
  },
];

// typeOf returns the table entry of a node type (or of its alias), or a
// bare entry for a type this table does not know: its whole config is then
// edited as JSON.
export function typeOf(type) {
  for (const t of nodeTypes) {
    if (t.type === type || (t.aliases || []).includes(type)) return t;
  }
  return { type, label: type || 'untyped', about: 'A node type the editor does not know; its settings are edited as JSON.', fields: [] };
}

// The workflow's own settings: metadata keys the validator knows.
export const metadataFields = [
  { key: 'description', label: 'Description', kind: 'textarea', rows: 2 },
  { key: 'communication_mode', label: 'Communication mode', kind: 'select', options: ['simple', 'pubsub'],
    optionLabels: { simple: 'simple (in-process)', pubsub: 'pubsub (over Redis)' } },
  { key: 'ask_timeout_seconds', label: 'Ask timeout (seconds)', kind: 'number', min: 0, placeholder: '30' },
  { key: 'timeout_seconds', label: 'Run timeout (seconds)', kind: 'number', min: 0 },
  { key: 'max_asks', label: 'Most asks in a run', kind: 'integer', min: 1 },
  { key: 'max_asks_per_pair', label: 'Most asks between two nodes', kind: 'integer', min: 1 },
  { key: 'max_ask_depth', label: 'Deepest nesting of asks', kind: 'integer', min: 1 },
  { key: 'max_llm_calls', label: 'Most model calls', kind: 'integer', min: 1 },
  { key: 'token_budget', label: 'Token budget', kind: 'integer', min: 1 },
  { key: 'max_tool_calls', label: 'Most tool calls', kind: 'integer', min: 1 },
  { key: 'http_allow', label: 'Hosts the HTTP tool may call', kind: 'list', placeholder: 'one host name per line' },
];

// Variable types the validator accepts.
export const variableTypes = ['', 'string', 'number', 'integer', 'boolean', 'object', 'array', 'json'];
