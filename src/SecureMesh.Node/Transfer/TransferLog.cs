using Microsoft.Extensions.Logging;

namespace SecureMesh.Node.Transfer;

internal static partial class TransferLog
{
    [LoggerMessage(EventId = 600, Level = LogLevel.Debug, Message = "protocol session with {PeerId} ready (version {Version})")]
    public static partial void SessionReady(ILogger logger, string peerId, uint version);

    [LoggerMessage(EventId = 601, Level = LogLevel.Warning, Message = "protocol error from {PeerId}: {Reason}")]
    public static partial void ProtocolError(ILogger logger, string peerId, string reason);

    [LoggerMessage(EventId = 602, Level = LogLevel.Warning, Message = "serving {PeerId} failed: {Reason}")]
    public static partial void ServeFailed(ILogger logger, string peerId, string reason);

    [LoggerMessage(EventId = 610, Level = LogLevel.Information, Message = "indexed {Path}: {ContentId}")]
    public static partial void Indexed(ILogger logger, string path, string contentId);

    [LoggerMessage(EventId = 611, Level = LogLevel.Warning, Message = "{Path} changed on disk since it was indexed; re-indexing")]
    public static partial void Changed(ILogger logger, string path);

    [LoggerMessage(EventId = 612, Level = LogLevel.Warning, Message = "indexing {Path} failed: {Reason}")]
    public static partial void IndexFailed(ILogger logger, string path, string reason);

    [LoggerMessage(EventId = 603, Level = LogLevel.Information, Message = "not shared: {Path} ({Reason})")]
    public static partial void Skipped(ILogger logger, string path, string reason);

    [LoggerMessage(EventId = 620, Level = LogLevel.Warning, Message = "chunk {Index} of {ContentId} from {PeerId} failed verification; peer dropped from this download")]
    public static partial void BadChunk(ILogger logger, long index, string contentId, string peerId);

    [LoggerMessage(EventId = 621, Level = LogLevel.Warning, Message = "peer {PeerId} banned: {Reason}")]
    public static partial void Banned(ILogger logger, string peerId, string reason);

    [LoggerMessage(EventId = 622, Level = LogLevel.Information, Message = "peer {PeerId} dropped from download {ContentId}: {Reason}")]
    public static partial void PeerDropped(ILogger logger, string peerId, string contentId, string reason);

    [LoggerMessage(EventId = 625, Level = LogLevel.Information, Message = "peer {PeerId} joined download {ContentId}")]
    public static partial void PeerJoined(ILogger logger, string peerId, string contentId);

    [LoggerMessage(EventId = 626, Level = LogLevel.Error, Message = "download {ContentId} ended on an unexpected error")]
    public static partial void DownloadCrashed(ILogger logger, string contentId, Exception exception);

    [LoggerMessage(EventId = 623, Level = LogLevel.Information, Message = "download {ContentId} finished: {Outcome}")]
    public static partial void DownloadFinished(ILogger logger, string contentId, string outcome);

    [LoggerMessage(EventId = 627, Level = LogLevel.Warning, Message = "cleaning up failed download {ContentId} failed: {Reason}")]
    public static partial void CleanUpFailed(ILogger logger, string contentId, string reason);

    [LoggerMessage(EventId = 630, Level = LogLevel.Debug, Message = "dialing {PeerId} at {Address} failed: {Reason}; next attempt in {Delay}")]
    public static partial void DialFailed(ILogger logger, string peerId, string address, string reason, TimeSpan delay);
}
