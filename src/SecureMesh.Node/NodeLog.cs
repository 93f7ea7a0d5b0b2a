using Microsoft.Extensions.Logging;

namespace SecureMesh.Node;

internal static partial class NodeLog
{
    [LoggerMessage(EventId = 100, Level = LogLevel.Information, Message = "node {PeerId} listening on {EndPoint}")]
    public static partial void Started(ILogger logger, string peerId, string endPoint);

    [LoggerMessage(EventId = 101, Level = LogLevel.Information, Message = "node stopped")]
    public static partial void Stopped(ILogger logger);

    [LoggerMessage(EventId = 110, Level = LogLevel.Information, Message = "session with {PeerId} ({Direction}, {Remote}) established; SAS: {Sas}")]
    public static partial void SessionOpened(ILogger logger, string peerId, string direction, string? remote, string sas);

    [LoggerMessage(EventId = 111, Level = LogLevel.Information, Message = "session with {PeerId} closed: {Reason}")]
    public static partial void SessionClosed(ILogger logger, string peerId, string reason);

    [LoggerMessage(EventId = 120, Level = LogLevel.Warning, Message = "unknown peer {PeerId} from {Remote} recorded as pending and disconnected; SAS: {Sas}")]
    public static partial void PendingPeer(ILogger logger, string peerId, string? remote, string sas);

    [LoggerMessage(EventId = 121, Level = LogLevel.Warning, Message = "refused {PeerId} from {Remote}: {Reason}; next attempt allowed in {Penalty}")]
    public static partial void Refused(ILogger logger, string peerId, string? remote, string reason, TimeSpan penalty);

    [LoggerMessage(EventId = 122, Level = LogLevel.Debug, Message = "refused {Remote} before the handshake: {Reason}")]
    public static partial void RefusedAddress(ILogger logger, string remote, string reason);

    [LoggerMessage(EventId = 130, Level = LogLevel.Warning, Message = "session handler for {PeerId} failed: {Reason}")]
    public static partial void HandlerFailed(ILogger logger, string peerId, string reason);

    [LoggerMessage(EventId = 131, Level = LogLevel.Error, Message = "trust store check failed: {Reason}")]
    public static partial void StoreFailed(ILogger logger, string reason);
}
