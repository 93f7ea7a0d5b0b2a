using System.Net;
using Microsoft.Extensions.Logging;

namespace SecureMesh.Core.Channel;

/// <summary>Settings of a secure channel (dialer or responder).</summary>
public class SecureChannelOptions
{
    /// <summary>The whole handshake (and the TCP connect when dialing) must finish within this time.</summary>
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Largest application message accepted or sent; a peer announcing more is disconnected before any allocation.
    /// The protocol's cap (the largest chunk with its header and proof), so a chunk of any valid size can travel.
    /// </summary>
    public int MaxMessageSize { get; init; } = Wire.WireLimits.DefaultMaxMessageSize;

    /// <summary>Source of time for deadlines (tests inject a fake one).</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>Where handshake failures and closes are reported; never receives secrets.</summary>
    public ILogger? Logger { get; init; }

    /// <summary>Bounds the warnings written for failed handshakes and refused connections (a flood writes a few lines, not one each).</summary>
    public LogThrottle FailureLog { get; init; } = new();

    /// <summary>The default options.</summary>
    public static SecureChannelOptions Default { get; } = new();

    internal void Validate()
    {
        if (HandshakeTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(HandshakeTimeout), "The handshake timeout must be positive.");
        }
        if (MaxMessageSize < 1 || MaxMessageSize > 1024 * 1024 * 1024)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxMessageSize), "The message size cap must be between 1 byte and 1 GiB.");
        }
        ArgumentNullException.ThrowIfNull(TimeProvider);
    }
}

/// <summary>Settings of a <see cref="SecureListener"/>.</summary>
public sealed class SecureListenerOptions : SecureChannelOptions
{
    /// <summary>Handshakes in progress at once; connections beyond it are closed at once.</summary>
    public int MaxPendingHandshakes { get; init; } = 256;

    /// <summary>
    /// When every handshake slot is taken, the oldest handshake that has run at least this long is ended to make room
    /// for the newcomer (an honest handshake takes milliseconds; one still running after this is most likely stalled).
    /// </summary>
    public TimeSpan EvictStalledAfter { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Handshakes in progress at once from one IP address.</summary>
    public int MaxPendingPerAddress { get; init; } = 16;

    /// <summary>Checked before any byte is read; false closes the connection at once.</summary>
    public Func<IPAddress, bool>? AddressFilter { get; init; }

    /// <summary>Authenticated connections waiting for <see cref="SecureListener.AcceptAsync"/>; more are closed.</summary>
    public int AcceptQueueCapacity { get; init; } = 256;

    /// <summary>The listen socket's backlog.</summary>
    public int Backlog { get; init; } = 512;
}
