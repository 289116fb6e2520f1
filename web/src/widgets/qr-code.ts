// A QR code drawn on a canvas, for the `otpauth://` address an authenticator app scans.
// qrcode-generator (MIT, no dependencies) computes the modules; we paint them ourselves
// rather than use its HTML-string helpers, so no markup is ever built from text.

import qrcode from 'qrcode-generator';

/** Pixels per module: a 33-module code with its margin is about 200 px wide. */
const MODULE_PX = 5;

/** The blank border scanners need, in modules (the QR standard asks for four). */
const QUIET_ZONE_MODULES = 4;

/** A canvas showing `text` as a QR code, described to screen readers by `label`. */
export function qrCanvas(text: string, label: string): HTMLCanvasElement {
  // Type 0 picks the smallest version that fits; level M survives a little glare or blur.
  const code = qrcode(0, 'M');
  code.addData(text);
  code.make();

  const modules = code.getModuleCount();
  const side = (modules + 2 * QUIET_ZONE_MODULES) * MODULE_PX;
  const canvas = document.createElement('canvas');
  canvas.width = side;
  canvas.height = side;
  canvas.className = 'qr-code';
  canvas.setAttribute('role', 'img');
  canvas.setAttribute('aria-label', label);

  const context = canvas.getContext('2d');
  if (!context) return canvas;
  // Always dark on white, whatever the page's colours: scanners expect it.
  context.fillStyle = '#ffffff';
  context.fillRect(0, 0, side, side);
  context.fillStyle = '#000000';
  for (let row = 0; row < modules; row += 1) {
    for (let col = 0; col < modules; col += 1) {
      if (!code.isDark(row, col)) continue;
      const x = (col + QUIET_ZONE_MODULES) * MODULE_PX;
      const y = (row + QUIET_ZONE_MODULES) * MODULE_PX;
      context.fillRect(x, y, MODULE_PX, MODULE_PX);
    }
  }
  return canvas;
}
