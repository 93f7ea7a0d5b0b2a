using System.Runtime.InteropServices;

namespace SecureMesh.Cli;

/// <summary>SIGINT and SIGTERM as a cancellation token, so long-running commands stop cleanly instead of dying.</summary>
internal sealed class StopSignals : IDisposable
{
    private readonly CancellationTokenSource _stop;
    private readonly PosixSignalRegistration _sigint;
    private readonly PosixSignalRegistration _sigterm;

    private StopSignals(CancellationToken outer)
    {
        _stop = CancellationTokenSource.CreateLinkedTokenSource(outer);
        _sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
        _sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
    }

    /// <summary>Cancelled on SIGINT, SIGTERM or when <paramref name="outer"/> is.</summary>
    public CancellationToken Token => _stop.Token;

    public static StopSignals Watch(CancellationToken outer) => new(outer);

    private void Stop(PosixSignalContext context)
    {
        context.Cancel = true;
        _stop.Cancel();
    }

    public void Dispose()
    {
        _sigint.Dispose();
        _sigterm.Dispose();
        _stop.Dispose();
    }
}
