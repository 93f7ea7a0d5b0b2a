using Microsoft.Extensions.Logging;

namespace SecureMesh.Node.Network;

internal static partial class NetworkLog
{
    [LoggerMessage(EventId = 140, Level = LogLevel.Debug, Message = "stream from {PeerId} not negotiated: {Reason}")]
    public static partial void NegotiationFailed(ILogger logger, string peerId, string reason);

    [LoggerMessage(EventId = 141, Level = LogLevel.Debug, Message = "stream of {Protocol} from {PeerId} refused: {Reason}")]
    public static partial void StreamRefused(ILogger logger, string peerId, string protocol, string reason);

    [LoggerMessage(EventId = 142, Level = LogLevel.Warning, Message = "handler of {Protocol} for {PeerId} failed: {Reason}")]
    public static partial void HandlerFailed(ILogger logger, string peerId, string protocol, string reason);

    [LoggerMessage(EventId = 143, Level = LogLevel.Information, Message = "replaced the connection with {PeerId}: {Reason}")]
    public static partial void ConnectionReplaced(ILogger logger, string peerId, string reason);

    [LoggerMessage(EventId = 144, Level = LogLevel.Debug, Message = "identify of {PeerId} failed: {Reason}")]
    public static partial void IdentifyFailed(ILogger logger, string peerId, string reason);

    [LoggerMessage(EventId = 145, Level = LogLevel.Debug, Message = "{PeerId} identifies as {Agent} with {Protocols} protocols")]
    public static partial void Identified(ILogger logger, string peerId, string? agent, int protocols);

    [LoggerMessage(EventId = 146, Level = LogLevel.Warning, Message = "Connection from {Remote} refused before the handshake: {Reason}")]
    public static partial void ConnectionRefused(ILogger logger, string remote, string reason);

    [LoggerMessage(EventId = 148, Level = LogLevel.Warning, Message = "{Count} more failed or refused connections were not logged one by one (at most {Burst} lines per {Window})")]
    public static partial void Suppressed(ILogger logger, long count, int burst, TimeSpan window);

    [LoggerMessage(EventId = 147, Level = LogLevel.Error, Message = "accepting on {EndPoint} stopped")]
    public static partial void AcceptLoopFailed(ILogger logger, string endPoint, Exception exception);
}
