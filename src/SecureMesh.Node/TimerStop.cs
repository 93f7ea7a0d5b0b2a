namespace SecureMesh.Node;

/// <summary>Stopping a <see cref="PeriodicTimer"/> loop without an exception.</summary>
internal static class TimerStop
{
    /// <summary>
    /// Disposes <paramref name="timer"/> when <paramref name="token"/> is cancelled, so that a loop waiting with
    /// <c>WaitForNextTickAsync()</c> (no token) ends with <c>false</c>. A tick wait cancelled through its token throws an
    /// exception whose stack trace the runtime resolves to files and lines (<c>ExceptionDispatchInfo.SetCurrentStackTrace</c>):
    /// the first one in a process loads System.Reflection.Metadata and reads the symbol files, ~20 ms at the end of
    /// every one-off command (issue 20).
    /// </summary>
    public static CancellationTokenRegistration StopOn(this PeriodicTimer timer, CancellationToken token) =>
        token.Register(static t => ((PeriodicTimer)t!).Dispose(), timer);
}
