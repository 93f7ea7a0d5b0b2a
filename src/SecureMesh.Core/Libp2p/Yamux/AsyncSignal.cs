using System.Threading.Tasks.Sources;

namespace SecureMesh.Core.Libp2p.Yamux;

/// <summary>
/// An auto-reset event for one waiter at a time, without an allocation per wait (a reusable
/// <see cref="IValueTaskSource"/>). A <see cref="Set"/> with nobody waiting is remembered for the next wait, so a waiter
/// checks its condition, then waits, and never misses a signal; waiters loop, so a stale signal only costs a re-check.
/// </summary>
internal sealed class AsyncSignal : IValueTaskSource
{
    private readonly Lock _lock = new();
    private ManualResetValueTaskSourceCore<bool> _core = new() { RunContinuationsAsynchronously = true };
    private bool _signalled;
    private bool _waiting;
    private CancellationToken _token;
    private CancellationTokenRegistration _registration;

    public ValueTask WaitAsync(CancellationToken cancellationToken)
    {
        short version;
        lock (_lock)
        {
            if (_signalled)
            {
                _signalled = false;
                return default;
            }
            if (_waiting)
            {
                throw new InvalidOperationException("another operation is already waiting on this stream");
            }
            if (cancellationToken.IsCancellationRequested)
            {
                return ValueTask.FromCanceled(cancellationToken);
            }
            _core.Reset();
            version = _core.Version;
            _waiting = true;
            _token = cancellationToken;
        }
        if (cancellationToken.CanBeCanceled)
        {
            // May run the callback inline when the token is cancelled meanwhile; OnCancelled copes.
            var registration = cancellationToken.UnsafeRegister(static state => ((AsyncSignal)state!).OnCancelled(), this);
            bool keep;
            lock (_lock)
            {
                keep = _waiting;
                if (keep)
                {
                    _registration = registration;
                }
            }
            if (!keep)
            {
                registration.Unregister();
            }
        }
        return new ValueTask(this, version);
    }

    /// <summary>Wakes the waiter; its continuation runs on the thread pool, never on the caller's thread.</summary>
    public void Set() => Set(inline: false);

    /// <summary>
    /// Wakes the waiter and runs its continuation on the calling thread, before returning (when it awaited without a
    /// scheduling context). Only for a caller that holds no lock and waits for nothing the continuation could need:
    /// the continuation is the application's code, up to its next wait.
    /// </summary>
    public void SetInline() => Set(inline: true);

    private void Set(bool inline)
    {
        CancellationTokenRegistration registration;
        lock (_lock)
        {
            if (!_waiting)
            {
                _signalled = true;
                return;
            }
            _waiting = false;
            registration = _registration;
            _registration = default;
        }
        registration.Unregister();
        // Only the one who cleared _waiting completes the core, so this field is ours to set until the next wait.
        _core.RunContinuationsAsynchronously = !inline;
        _core.SetResult(true);
    }

    private void OnCancelled()
    {
        CancellationToken token;
        lock (_lock)
        {
            if (!_waiting)
            {
                return;
            }
            _waiting = false;
            token = _token;
            _registration = default;
        }
        _core.RunContinuationsAsynchronously = true;
        _core.SetException(new OperationCanceledException(token));
    }

    void IValueTaskSource.GetResult(short token) => _core.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource.GetStatus(short token) => _core.GetStatus(token);

    void IValueTaskSource.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}
