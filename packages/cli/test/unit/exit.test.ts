import {
  ConfigInvalidError,
  InvalidInputError,
  NotFoundError,
  StoreUnavailableError,
  TransportUnavailableError,
} from '@stratus/core';
import { expect } from 'chai';
import { CliError, ExitCode, exitCodeFor, formatError } from '../../src/exit.js';

describe('exit codes and error lines', () => {
  it('maps typed errors to the documented exit codes', () => {
    expect(exitCodeFor(new NotFoundError('volume', 'x'))).to.equal(ExitCode.NOT_FOUND);
    expect(exitCodeFor(new InvalidInputError('bad'))).to.equal(ExitCode.USAGE);
    expect(exitCodeFor(new StoreUnavailableError('down'))).to.equal(ExitCode.UNREACHABLE);
    expect(exitCodeFor(new TransportUnavailableError('down'))).to.equal(ExitCode.UNREACHABLE);
    expect(exitCodeFor(new ConfigInvalidError('x', []))).to.equal(ExitCode.FAILED);
    expect(exitCodeFor(new CliError('gone', { exitCode: ExitCode.UNREACHABLE }))).to.equal(4);
    expect(exitCodeFor(new Error('bug'))).to.equal(ExitCode.FAILED);
  });

  it('prints one line plus a hint, and no stack without --debug', () => {
    const text = formatError(new CliError('Cannot reach it', { hint: 'start it' }), false);
    expect(text).to.equal('stratus: Cannot reach it\nhint: start it\n');
  });

  it('adds a known hint for typed errors', () => {
    expect(formatError(new StoreUnavailableError('no database'), false)).to.match(
      /^stratus: no database\nhint: Check database\.url/,
    );
  });

  it('prints the stack and its causes with --debug', () => {
    const error = new CliError('outer', { cause: new Error('inner') });
    const text = formatError(error, true);
    expect(text).to.include('CliError: outer');
    expect(text).to.include('caused by:');
    expect(text).to.include('Error: inner');
  });

  it('calls an untyped error a bug and points at --debug', () => {
    const text = formatError(new TypeError('x is undefined'), false);
    expect(text).to.not.include('    at ');
    expect(text).to.include('--debug');
  });
});
