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

    /// <summary>A refusal after the handshake; the wait before the address may try again is named only when there is one.</summary>
    public static void Refused(ILogger logger, string peerId, string? remote, string reason, TimeSpan penalty)
    {
        if (penalty > TimeSpan.Zero)
        {
            RefusedWithWait(logger, peerId, remote, reason, penalty);
        }
        else
        {
            RefusedAtOnce(logger, peerId, remote, reason);
        }
    }

    [LoggerMessage(EventId = 121, Level = LogLevel.Warning, Message = "refused {PeerId} from {Remote}: {Reason}; next attempt allowed in {Penalty}")]
    private static partial void RefusedWithWait(ILogger logger, string peerId, string? remote, string reason, TimeSpan penalty);

    [LoggerMessage(EventId = 126, Level = LogLevel.Warning, Message = "refused {PeerId} from {Remote}: {Reason}")]
    private static partial void RefusedAtOnce(ILogger logger, string peerId, string? remote, string reason);

    [LoggerMessage(EventId = 122, Level = LogLevel.Debug, Message = "refused {Remote} before the handshake: {Reason}")]
    public static partial void RefusedAddress(ILogger logger, string remote, string reason);

    [LoggerMessage(EventId = 130, Level = LogLevel.Warning, Message = "session handler for {PeerId} failed: {Reason}")]
    public static partial void HandlerFailed(ILogger logger, string peerId, string reason);

    [LoggerMessage(EventId = 131, Level = LogLevel.Error, Message = "trust store check failed: {Reason}")]
    public static partial void StoreFailed(ILogger logger, string reason);

    [LoggerMessage(EventId = 132, Level = LogLevel.Error, Message = "a subscriber to new sessions failed for {PeerId} ({Error}); the node goes on accepting")]
    public static partial void SubscriberFailed(ILogger logger, string peerId, string error);

    [LoggerMessage(EventId = 133, Level = LogLevel.Error, Message = "accepting a connection from {Remote} failed ({Error}); it was closed and the node goes on accepting")]
    public static partial void AcceptFailed(ILogger logger, string remote, string error);

    [LoggerMessage(EventId = 112, Level = LogLevel.Information, Message = "first session with {PeerId}: both sides show the same short authentication string; read it aloud to rule out interception: {Sas}")]
    public static partial void CompareSas(ILogger logger, string peerId, string sas);

    [LoggerMessage(EventId = 113, Level = LogLevel.Information, Message = "{PeerId} hung up right after the handshake (it may not trust this node yet); compare the short authentication string aloud with its owner: {Sas}")]
    public static partial void HungUpBeforeHello(ILogger logger, string peerId, string sas);

    [LoggerMessage(EventId = 123, Level = LogLevel.Warning, Message = "{Count} more refusals of {Remote} in the last {Interval} were not logged one by one")]
    public static partial void RefusedRepeatedly(ILogger logger, string remote, long count, TimeSpan interval);

    [LoggerMessage(EventId = 124, Level = LogLevel.Warning, Message = "{PeerId} refuses this node (it has blocked us; refusal {Count} in a row); next attempt in {Backoff}")]
    public static partial void RefusedByPeer(ILogger logger, string peerId, int count, TimeSpan backoff);

    [LoggerMessage(EventId = 125, Level = LogLevel.Information, Message = "{PeerId} accepts this node again")]
    public static partial void RefusalCleared(ILogger logger, string peerId);
}
