// The weekly availability editor: rows of weekday / start / end, with add, remove and a
// working-week preset. Times are local to the therapist's chosen time zone.

import { el, fieldId, replace } from '../dom';
import type { AvailabilityRule } from '../protocol';

export const WEEKDAYS = [
  'Monday',
  'Tuesday',
  'Wednesday',
  'Thursday',
  'Friday',
  'Saturday',
  'Sunday',
];

interface Row {
  node: HTMLFieldSetElement;
  legend: HTMLLegendElement;
  weekday: HTMLSelectElement;
  start: HTMLInputElement;
  end: HTMLInputElement;
  remove: HTMLButtonElement;
}

export class AvailabilityEditor {
  readonly node: HTMLElement;
  private readonly list: HTMLDivElement;
  private readonly empty: HTMLParagraphElement;
  private rows: Row[] = [];

  constructor() {
    this.list = el('div', { class: 'availability-rows' });
    this.empty = el(
      'p',
      { class: 'hint' },
      'No times yet: clients cannot book you until you add some.',
    );
    this.node = el(
      'div',
      { class: 'availability-editor' },
      this.empty,
      this.list,
      el(
        'div',
        { class: 'actions' },
        el(
          'button',
          { type: 'button', class: 'button secondary', onclick: () => this.addRow() },
          'Add a time window',
        ),
        el(
          'button',
          { type: 'button', class: 'button secondary', onclick: () => this.applyWorkingWeek() },
          'Mon–Fri 09:00–17:00',
        ),
      ),
    );
    this.refresh();
  }

  /** The rules as entered, in row order. */
  rules(): AvailabilityRule[] {
    return this.rows.map((row) => ({
      weekday: Number(row.weekday.value),
      start: row.start.value,
      end: row.end.value,
    }));
  }

  setRules(rules: AvailabilityRule[]): void {
    this.rows = [];
    replace(this.list);
    for (const rule of rules) this.addRow(rule, false);
    this.refresh();
  }

  /** A sentence about the first row that cannot be right, or null. */
  problem(): string | null {
    for (const [index, row] of this.rows.entries()) {
      if (!row.start.value || !row.end.value)
        return `Time window ${index + 1} needs a start and an end.`;
      if (row.end.value <= row.start.value)
        return `Time window ${index + 1} must end after it starts.`;
    }
    return null;
  }

  /** Replaces the rows with Monday to Friday, 09:00 to 17:00. */
  applyWorkingWeek(): void {
    this.setRules([1, 2, 3, 4, 5].map((weekday) => ({ weekday, start: '09:00', end: '17:00' })));
    this.rows[0]?.weekday.focus();
  }

  addRow(rule: AvailabilityRule = this.nextRule(), focus = true): void {
    const weekday = el(
      'select',
      { id: fieldId('weekday') },
      WEEKDAYS.map((name, index) =>
        el('option', { value: String(index + 1), selected: rule.weekday === index + 1 }, name),
      ),
    );
    const start = el('input', {
      type: 'time',
      id: fieldId('start'),
      value: rule.start,
      required: true,
      step: 60,
    });
    const end = el('input', {
      type: 'time',
      id: fieldId('end'),
      value: rule.end,
      required: true,
      step: 60,
    });
    const legend = el('legend');
    const remove = el('button', { type: 'button', class: 'button link' }, 'Remove');
    const node = el(
      'fieldset',
      { class: 'availability-row' },
      legend,
      el('div', { class: 'field' }, el('label', { for: weekday.id }, 'Day'), weekday),
      el('div', { class: 'field' }, el('label', { for: start.id }, 'From'), start),
      el('div', { class: 'field' }, el('label', { for: end.id }, 'Until'), end),
      remove,
    );
    const row: Row = { node, legend, weekday, start, end, remove };
    remove.addEventListener('click', () => {
      this.rows = this.rows.filter((r) => r !== row);
      node.remove();
      this.refresh();
    });

    this.rows.push(row);
    this.list.appendChild(node);
    this.refresh();
    if (focus) weekday.focus();
  }

  /** A sensible new row: the day after the last one, same hours. */
  private nextRule(): AvailabilityRule {
    const last = this.rows.at(-1);
    if (!last) return { weekday: 1, start: '09:00', end: '17:00' };
    return {
      weekday: (Number(last.weekday.value) % 7) + 1,
      start: last.start.value,
      end: last.end.value,
    };
  }

  /** Renumbers the rows so their names stay "Time window 1, 2, 3…". */
  private refresh(): void {
    this.rows.forEach((row, index) => {
      row.legend.textContent = `Time window ${index + 1}`;
      row.remove.setAttribute('aria-label', `Remove time window ${index + 1}`);
    });
    this.empty.hidden = this.rows.length > 0;
  }
}
