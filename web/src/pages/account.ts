// `#/account` (every signed-in user): password, two-step verification and devices.

import { requireUser, type Page } from '../app';
import { el, replace } from '../dom';
import { changePasswordForm } from '../widgets/change-password';
import { DeviceList } from '../widgets/devices';
import { TwoStepSettings } from '../widgets/two-step';

export const accountPage: Page = (root, app) => {
  const user = requireUser(root, app);
  if (!user) return;

  const devices = new DeviceList(app);
  const twoStep = new TwoStepSettings(app);
  replace(
    root,
    el('h1', null, 'Your account'),
    el('p', { class: 'lead' }, 'Signed in as ', el('strong', null, user.email), '.'),
    el(
      'div',
      { class: 'narrow-column' },
      // A password change signs the other devices out: show the list without them.
      changePasswordForm(app, () => devices.load()),
      twoStep.node,
      devices.node,
    ),
  );
  return () => {
    devices.close();
    twoStep.close();
  };
};
