using Microsoft.Extensions.Logging;

namespace SecureMesh.Core.Libp2p.Yamux;

/// <summary>Source-generated log messages with fixed event ids (3101-3109).</summary>
internal static partial class YamuxLog
{
    [LoggerMessage(EventId = 3101, Level = LogLevel.Debug, Message = "Yamux session ({Role}) closed: {Reason}")]
    public static partial void SessionClosed(ILogger logger, string role, string reason);

    [LoggerMessage(EventId = 3102, Level = LogLevel.Warning, Message = "Yamux session ({Role}) ended by a protocol error: {Reason}")]
    public static partial void ProtocolError(ILogger logger, string role, string reason);

    [LoggerMessage(EventId = 3103, Level = LogLevel.Debug, Message = "Yamux stream {StreamId} refused: {Reason}")]
    public static partial void StreamRefused(ILogger logger, uint streamId, string reason);

    [LoggerMessage(EventId = 3104, Level = LogLevel.Debug, Message = "Yamux stream {StreamId} receive window grown to {Window} bytes (round trip {Rtt})")]
    public static partial void WindowGrown(ILogger logger, uint streamId, uint window, TimeSpan rtt);

    [LoggerMessage(EventId = 3105, Level = LogLevel.Debug, Message = "Yamux ping answer {Value} matches no ping of ours; ignored")]
    public static partial void UnexpectedPong(ILogger logger, uint value);

    [LoggerMessage(EventId = 3106, Level = LogLevel.Debug, Message = "Yamux ping from the peer not answered: {Pending} answers are still queued")]
    public static partial void PingDropped(ILogger logger, int pending);

    [LoggerMessage(EventId = 3107, Level = LogLevel.Debug, Message = "Yamux peer is going away (code {Code})")]
    public static partial void RemoteGoAway(ILogger logger, uint code);
}
