using Microsoft.Extensions.Logging;

namespace SecureMesh.Node.Control;

internal static partial class ControlLog
{
    [LoggerMessage(EventId = 300, Level = LogLevel.Information, Message = "control API listening on {Socket}")]
    public static partial void Listening(ILogger logger, string socket);

    [LoggerMessage(EventId = 301, Level = LogLevel.Warning, Message = "control API refused a connection from uid {Uid} (pid {Pid}): only uid {Owner} may use it")]
    public static partial void RefusedUid(ILogger logger, uint uid, int pid, uint owner);

    [LoggerMessage(EventId = 302, Level = LogLevel.Warning, Message = "control API refused a connection: the peer's credentials are unavailable")]
    public static partial void NoCredentials(ILogger logger);

    [LoggerMessage(EventId = 303, Level = LogLevel.Information, Message = "removed a stale control socket {Socket}")]
    public static partial void RemovedStale(ILogger logger, string socket);

    [LoggerMessage(EventId = 304, Level = LogLevel.Error, Message = "control API request {Method} {Path} failed: {Reason}")]
    public static partial void RequestFailed(ILogger logger, string method, string path, string reason);

    [LoggerMessage(EventId = 305, Level = LogLevel.Debug, Message = "control API {Method} {Path} -> {Status} ({Kind}): {Reason}")]
    public static partial void RequestRefused(ILogger logger, string method, string path, int status, string kind, string reason);

    [LoggerMessage(EventId = 306, Level = LogLevel.Error, Message = "control API on {Socket} could not start its web host and no longer listens: {Reason}")]
    public static partial void StartFailed(ILogger logger, string socket, string reason);

    [LoggerMessage(EventId = 307, Level = LogLevel.Debug, Message = "control API web host built in {BuildMs:0.0} ms and started in {StartMs:0.0} ms")]
    public static partial void WebHostStarted(ILogger logger, double buildMs, double startMs);
}
