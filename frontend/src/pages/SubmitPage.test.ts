import { render, screen, within } from '@testing-library/svelte';
import userEvent from '@testing-library/user-event';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { findHistory } from '../lib/history';
import { engines, job, json, scriptedFetch, type Call } from '../test-helpers';
import SubmitPage from './SubmitPage.svelte';

const png = (name: string) => new File([new Uint8Array([137, 80, 78, 71, 1, 2, 3])], name, { type: 'image/png' });

function setup(routes: Parameters<typeof scriptedFetch>[0] = {}, data = engines()) {
  const fake = scriptedFetch(routes);
  vi.stubGlobal('fetch', fake.fetchFn);
  render(SubmitPage, { engines: data, enginesError: null, onretry: vi.fn() });
  return { ...fake, user: userEvent.setup({ applyAccept: false }) };
}

beforeEach(() => {
  localStorage.clear();
  window.location.hash = '';
});
afterEach(() => vi.unstubAllGlobals());

describe('SubmitPage', () => {
  it('rejects a non-image before uploading anything', async () => {
    const { user, calls } = setup();
    const notes = new File(['hello'], 'notes.txt', { type: 'text/plain' });
    await user.upload(screen.getByLabelText(/Content image/, { selector: 'input' }), notes);
    expect(await screen.findByText(/“notes.txt” is not a supported image/)).toBeInTheDocument();
    await user.click(screen.getByRole('button', { name: /Stylize with/ }));
    expect(screen.getByText('Choose a style image.')).toBeInTheDocument();
    expect(calls).toHaveLength(0);
  });

  it('checks the decoded size against the pixel limit', async () => {
    const data = engines();
    data.limits.max_pixels = 1000; // the test images "decode" as 64×48 = 3072 pixels
    const { user } = setup({}, data);
    await user.upload(screen.getByLabelText(/Content image/, { selector: 'input' }), png('big.png'));
    expect(await screen.findByText(/The image is 64×48/)).toBeInTheDocument();
  });

  it('sends the images, the mode and only the changed settings, then opens the job page', async () => {
    const created = job({ id: 'job-1' });
    let sent: FormData | null = null;
    const { user } = setup({
      'POST /api/v1/jobs': (call: Call) => {
        sent = call.body as FormData;
        return json(created, 202);
      },
    });
    await user.upload(screen.getByLabelText(/Content image/, { selector: 'input' }), png('cat.png'));
    await user.upload(screen.getByLabelText(/Style image/, { selector: 'input' }), png('wave.png'));
    await user.click(screen.getByText(/Advanced settings/));
    const size = screen.getByLabelText('Image size');
    await user.clear(size);
    await user.type(size, '32');
    expect(screen.getByText('custom')).toBeInTheDocument();
    await user.click(screen.getByRole('button', { name: 'Stylize with Gatys' }));

    await vi.waitFor(() => expect(window.location.hash).toBe('#/jobs/job-1'));
    const form = sent as unknown as FormData;
    expect(form.get('mode')).toBe('gatys');
    expect((form.get('content') as File).name).toBe('cat.png');
    expect(form.getAll('style').map((f) => (f as File).name)).toEqual(['wave.png']);
    expect(form.get('image_size')).toBe('32');
    expect(form.get('total_iterations')).toBe('300'); // the Balanced preset's value
    expect(form.has('optimizer')).toBe(false); // unchanged default: the server's own
    expect(findHistory('job-1')).toMatchObject({ mode: 'gatys', status: 'queued' });
  });

  it('puts a server validation error next to the setting it names', async () => {
    const body = { error: { code: 'invalid', message: 'has 2 weights for 1 style image(s)', field: 'style_blend_weights' } };
    const { user } = setup({ 'POST /api/v1/jobs': json(body, 422) });
    await user.upload(screen.getByLabelText(/Content image/, { selector: 'input' }), png('cat.png'));
    await user.upload(screen.getByLabelText(/Style image/, { selector: 'input' }), png('wave.png'));
    await user.click(screen.getByRole('button', { name: /Stylize with/ }));
    const field = (await screen.findByText('has 2 weights for 1 style image(s)')).closest('[data-param]') as HTMLElement;
    expect(field).toHaveAttribute('data-param', 'style_blend_weights');
    expect(within(document.body).getByText('Style blend weights: has 2 weights for 1 style image(s)')).toBeInTheDocument();
  });

  it('shows the blend ratio slider and a warning for an unavailable engine', async () => {
    const { user } = setup();
    await user.click(screen.getByRole('radio', { name: /Blend/ }));
    await user.click(screen.getByText(/Advanced settings/));
    expect(screen.getByRole('slider', { name: /Ratio/ })).toBeInTheDocument();
    expect(screen.getByText(/Blend is unavailable \(model artifact not installed\)/)).toBeInTheDocument();
    expect(screen.getByLabelText(/Second style/, { selector: 'input' })).toBeInTheDocument();
  });

  it('asks for a starting image when the init method is "image"', async () => {
    const { user } = setup();
    await user.click(screen.getByText(/Advanced settings/));
    await user.selectOptions(screen.getByRole('combobox', { name: 'Init method' }), 'image');
    expect(screen.getByLabelText(/Starting image/, { selector: 'input' })).toBeInTheDocument();
  });
});
