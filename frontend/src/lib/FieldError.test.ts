import { render, screen } from '@testing-library/svelte';
import { describe, expect, it } from 'vitest';
import FieldError from './FieldError.svelte';

describe('FieldError', () => {
  it('renders the message as an alert with the given id', () => {
    render(FieldError, { id: 'content-error', message: 'Choose a content image.' });
    const alert = screen.getByRole('alert');
    expect(alert).toHaveTextContent('Choose a content image.');
    expect(alert).toHaveAttribute('id', 'content-error');
  });

  it('renders nothing without a message', () => {
    render(FieldError, { id: 'x', message: null });
    expect(screen.queryByRole('alert')).toBeNull();
  });
});
