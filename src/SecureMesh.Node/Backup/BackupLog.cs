using Microsoft.Extensions.Logging;

namespace SecureMesh.Node.Backup;

internal static partial class BackupLog
{
    [LoggerMessage(EventId = 1900, Level = LogLevel.Warning, Message = "backup request from {PeerId} refused: {Reason}")]
    public static partial void Refused(ILogger logger, string peerId, string reason);

    [LoggerMessage(EventId = 1901, Level = LogLevel.Information, Message = "backup blob of {Size} bytes from {PeerId} refused: quota full")]
    public static partial void QuotaFull(ILogger logger, string peerId, long size);

    [LoggerMessage(EventId = 1910, Level = LogLevel.Information, Message = "backup of {Path}: {Files} new or changed file(s), {Blobs} blob(s) sealed")]
    public static partial void Scanned(ILogger logger, string path, int files, int blobs);

    [LoggerMessage(EventId = 1911, Level = LogLevel.Warning, Message = "backup to {PeerId} failed: {Reason}")]
    public static partial void HolderFailed(ILogger logger, string peerId, string reason);

    [LoggerMessage(EventId = 1912, Level = LogLevel.Warning, Message = "backup proof from {PeerId} failed: {Reason}")]
    public static partial void ProofFailed(ILogger logger, string peerId, string reason);

    [LoggerMessage(EventId = 1913, Level = LogLevel.Warning, Message = "backup: {Path} skipped: {Reason}")]
    public static partial void FileSkipped(ILogger logger, string path, string reason);

    [LoggerMessage(EventId = 1914, Level = LogLevel.Warning, Message = "backup round failed: {Reason}")]
    public static partial void RoundFailed(ILogger logger, string reason);
}
