using System.Net;
using Microsoft.Extensions.Logging;

namespace SecureMesh.Core.Channel;

/// <summary>Source-generated log messages with fixed event ids. Never pass key material here.</summary>
internal static partial class ChannelLog
{
    [LoggerMessage(EventId = 3001, Level = LogLevel.Information, Message = "Secure channel established with {PeerId} ({Remote}) as {Role}")]
    public static partial void HandshakeSucceeded(ILogger logger, string peerId, string? remote, string role);

    [LoggerMessage(EventId = 3002, Level = LogLevel.Warning, Message = "Handshake with {Remote} failed: {Reason}")]
    public static partial void HandshakeFailed(ILogger logger, string? remote, string reason);

    [LoggerMessage(EventId = 3003, Level = LogLevel.Warning, Message = "Connection from {Remote} refused before the handshake: {Reason}")]
    public static partial void ConnectionRefused(ILogger logger, IPAddress remote, string reason);

    [LoggerMessage(EventId = 3004, Level = LogLevel.Warning, Message = "Secure connection with {PeerId} closed: {Reason}")]
    public static partial void ConnectionFailed(ILogger logger, string peerId, string reason);

    [LoggerMessage(EventId = 3008, Level = LogLevel.Information, Message = "Secure connection with {PeerId} ended: {Reason}")]
    public static partial void ConnectionEnded(ILogger logger, string peerId, string reason);

    [LoggerMessage(EventId = 3007, Level = LogLevel.Warning, Message = "{Count} more failed or refused connections were not logged one by one (at most {Burst} lines per {Window})")]
    public static partial void Suppressed(ILogger logger, long count, int burst, TimeSpan window);

    /// <summary>Logs a failed handshake within <paramref name="throttle"/>'s bounds.</summary>
    public static void HandshakeFailed(ILogger logger, LogThrottle throttle, string? remote, string reason)
    {
        if (Admit(logger, throttle))
        {
            HandshakeFailed(logger, remote, reason);
        }
    }

    /// <summary>Logs a refused connection within <paramref name="throttle"/>'s bounds.</summary>
    public static void ConnectionRefused(ILogger logger, LogThrottle throttle, IPAddress remote, string reason)
    {
        if (Admit(logger, throttle))
        {
            ConnectionRefused(logger, remote, reason);
        }
    }

    private static bool Admit(ILogger logger, LogThrottle throttle)
    {
        var admitted = throttle.TryWrite(out var suppressed);
        if (suppressed > 0)
        {
            Suppressed(logger, suppressed, throttle.Burst, throttle.Window);
        }
        return admitted;
    }

    [LoggerMessage(EventId = 3005, Level = LogLevel.Information, Message = "Listening for secure connections on {EndPoint}")]
    public static partial void Listening(ILogger logger, EndPoint endPoint);

    [LoggerMessage(EventId = 3006, Level = LogLevel.Error, Message = "Accept loop on {EndPoint} stopped unexpectedly")]
    public static partial void AcceptLoopFailed(ILogger logger, EndPoint endPoint, Exception exception);
}
