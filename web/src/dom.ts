// Small DOM helpers. Text always goes in through text nodes, never as HTML, so names,
// bios and messages typed by other people cannot inject markup.

export type Child = Node | string | number | null | undefined | false;
export type Children = Array<Child | Child[]>;

type Listener = (event: Event) => void;
export type AttrValue = string | number | boolean | null | undefined | Listener;
export type Attrs = Record<string, AttrValue>;

/**
 * Creates an element. In `attrs`, `class` sets the class list, `on<event>` adds a listener,
 * `value`/`checked`/`disabled` set the live properties, `true` sets an empty attribute and
 * `false`/`null`/`undefined` leave it out.
 */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs?: Attrs | null,
  ...children: Children
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    setAttr(node, key, value);
  }
  append(node, ...children);
  return node;
}

function setAttr(node: HTMLElement, key: string, value: AttrValue): void {
  if (value === null || value === undefined || value === false) return;
  if (typeof value === 'function') {
    node.addEventListener(key.slice(2).toLowerCase(), value);
  } else if (key === 'class') {
    node.className = String(value);
  } else if (key === 'value' && 'value' in node) {
    (node as HTMLInputElement).value = String(value);
  } else if (key === 'checked' && node instanceof HTMLInputElement) {
    node.checked = Boolean(value);
  } else if (value === true) {
    node.setAttribute(key, '');
  } else {
    node.setAttribute(key, String(value));
  }
}

/** Appends children, flattening arrays and skipping empty ones. */
export function append(parent: Node, ...children: Children): void {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces every child of `parent`. */
export function replace(parent: Node, ...children: Children): void {
  while (parent.firstChild) parent.removeChild(parent.firstChild);
  append(parent, ...children);
}

let nextFieldId = 0;

/** A unique id for pairing a `<label for>` with its control. */
export function fieldId(prefix: string): string {
  nextFieldId += 1;
  return `${prefix}-${nextFieldId}`;
}

/** A labelled form field: the label, the control, and an optional hint tied by aria. */
export function field(
  label: string,
  control: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement,
  hint?: string,
): HTMLDivElement {
  if (!control.id) control.id = fieldId('field');
  const hintNode = hint ? el('p', { class: 'hint', id: `${control.id}-hint` }, hint) : null;
  if (hintNode) control.setAttribute('aria-describedby', hintNode.id);
  return el('div', { class: 'field' }, el('label', { for: control.id }, label), control, hintNode);
}

/** A message region for a form's outcome: errors are announced at once, others politely. */
export class StatusLine {
  readonly node: HTMLParagraphElement;

  constructor(className = 'status') {
    this.node = el('p', { class: className, role: 'status', 'aria-live': 'polite' });
  }

  info(text: string): void {
    this.set(text, 'info');
  }

  success(text: string): void {
    this.set(text, 'success');
  }

  error(text: string): void {
    this.set(text, 'error');
  }

  clear(): void {
    this.set('', 'info');
  }

  private set(text: string, tone: 'info' | 'success' | 'error'): void {
    this.node.textContent = text;
    this.node.dataset.tone = tone;
    this.node.setAttribute('role', tone === 'error' ? 'alert' : 'status');
  }
}
