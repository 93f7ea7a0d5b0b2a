using System.Net.Sockets;
using System.Reflection;
using SecureMesh.Core.Identity;
using SecureMesh.Core.Libp2p.Multistream;
using SecureMesh.Core.Libp2p.Yamux;

namespace SecureMesh.Core.Libp2p.Identify;

/// <summary>
/// libp2p identify (<c>/ipfs/id/1.0.0</c>) and identify push (<c>/ipfs/id/push/1.0.0</c>) on an already negotiated stream.
/// The answer (or the push) is one or more varint-length-prefixed <see cref="IdentifyMessage"/>s, then the sender closes
/// its side; the receiver merges them. A peer whose public key is not its Peer ID's is refused.
/// </summary>
public sealed class IdentifyService
{
    /// <summary>Identify's protocol ID.</summary>
    public const string ProtocolId = "/ipfs/id/1.0.0";

    /// <summary>Identify push's protocol ID.</summary>
    public const string PushProtocolId = "/ipfs/id/push/1.0.0";

    /// <summary>The protocol version go-libp2p and js-libp2p announce.</summary>
    public const string DefaultProtocolVersion = "ipfs/0.1.0";

    /// <summary>Messages read from one stream at most (go-libp2p and js-libp2p read up to 10).</summary>
    public const int MaxMessages = 10;

    /// <summary>The default pause between writing an answer and returning (see <see cref="RespondAsync"/>).</summary>
    public static readonly TimeSpan DefaultCloseGrace = TimeSpan.FromMilliseconds(50);

    private readonly TimeSpan _timeout;
    private readonly TimeProvider _time;
    private readonly TimeSpan _closeGrace;

    /// <summary>
    /// A service whose every exchange must finish within <paramref name="timeout"/> (default 30 s); an answer is followed by
    /// <paramref name="closeGrace"/> (default <see cref="DefaultCloseGrace"/>, zero for none) before the caller may close.
    /// </summary>
    public IdentifyService(TimeSpan? timeout = null, TimeProvider? timeProvider = null, TimeSpan? closeGrace = null)
    {
        _timeout = timeout ?? TimeSpan.FromSeconds(30);
        if (_timeout <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(timeout), "The timeout must be positive.");
        }
        _closeGrace = closeGrace ?? DefaultCloseGrace;
        if (_closeGrace < TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(closeGrace), "The close grace cannot be negative.");
        }
        _time = timeProvider ?? TimeProvider.System;
    }

    /// <summary>Our agent version: <c>securemesh/</c> and the assembly's informational version (without build metadata).</summary>
    public static string AgentVersion { get; } = "securemesh/" + Version();

    /// <summary>
    /// Our identify message: the public key of <paramref name="identity"/>, the protocol and agent versions, and what is given.
    /// <paramref name="observedAddr"/> is the binary multiaddr we see the peer at.
    /// </summary>
    public static IdentifyMessage Describe(NodeIdentity identity, IReadOnlyList<byte[]> listenAddrs, IReadOnlyList<string> protocols, byte[]? observedAddr)
    {
        ArgumentNullException.ThrowIfNull(identity);
        return new IdentifyMessage
        {
            ProtocolVersion = DefaultProtocolVersion,
            AgentVersion = AgentVersion,
            PublicKey = PeerId.EncodeProtobufPublicKey(identity.PublicKey),
            ListenAddrs = listenAddrs,
            ObservedAddr = observedAddr,
            Protocols = protocols,
        };
    }

    /// <summary>
    /// Answers an identify request: writes <paramref name="info"/>, then pauses for the close grace. The caller then closes
    /// the stream, which ends the answer. The pause is for js-libp2p 3.x: when the multistream-select echo, the answer and
    /// the end of the stream reach it in one read, its negotiation hands the unread answer back to a stream already
    /// closed and the identify fails ("Cannot push data onto a stream that is closed"); a close a moment later arrives in
    /// a read of its own. Real time, on purpose: it is about the peer's event loop, not our clock.
    /// </summary>
    public async Task RespondAsync(Stream stream, IdentifyMessage info, CancellationToken cancellationToken)
    {
        await SendAsync(stream, info, cancellationToken).ConfigureAwait(false);
        if (_closeGrace > TimeSpan.Zero)
        {
            await Task.Delay(_closeGrace, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Pushes <paramref name="info"/> (all of it, or only what changed). The caller then closes the stream.</summary>
    public Task PushAsync(Stream stream, IdentifyMessage info, CancellationToken cancellationToken) => SendAsync(stream, info, cancellationToken);

    /// <summary>
    /// Reads a peer's identify answer up to the end of the stream (at most <see cref="MaxMessages"/> messages, merged) and
    /// checks it: the public key must be present and be <paramref name="remote"/>'s. Throws <see cref="SecureMeshException"/>.
    /// </summary>
    public Task<IdentifyMessage> RequestAsync(Stream stream, PeerId remote, CancellationToken cancellationToken) =>
        ReceiveAsync(stream, remote, keyRequired: true, cancellationToken);

    /// <summary>
    /// Identifies the peer of <paramref name="session"/>: opens a stream, negotiates <see cref="ProtocolId"/> on it and
    /// reads the answer as <see cref="RequestAsync"/> does. Null, without an exception, when the session has ended or ends
    /// before the peer took the stream (a peer that closes the connection right after the handshake is common and no
    /// failure; an exception thrown through each layer of the negotiation cost every such connection far more than the
    /// identify itself). Any other failure, and an end after the negotiation, throws as <see cref="RequestAsync"/> does.
    /// </summary>
    public async Task<IdentifyMessage?> RequestOverAsync(YamuxSession session, PeerId remote, MultistreamOptions? negotiation, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(session);
        if (session.ClosedReason is not null || session.RemoteGoingAway)
        {
            return null;
        }
        await using var stream = await session.OpenStreamAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            stream.EndsQuietly = true;
            if (await MultistreamSelect.SelectOrEndAsync(stream, [ProtocolId], negotiation, cancellationToken).ConfigureAwait(false) is null)
            {
                return null;
            }
            // Negotiated: from here the end of the session is a failure of the answer, as on any stream.
            stream.EndsQuietly = false;
            return await RequestAsync(stream, remote, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            stream.Reset();
            throw;
        }
    }

    /// <summary>Reads a pushed update; a public key, when present, must be <paramref name="remote"/>'s.</summary>
    public Task<IdentifyMessage> ReceivePushAsync(Stream stream, PeerId remote, CancellationToken cancellationToken) =>
        ReceiveAsync(stream, remote, keyRequired: false, cancellationToken);

    /// <summary>Checks that <paramref name="message"/>'s public key belongs to <paramref name="remote"/>.</summary>
    public static void CheckKey(IdentifyMessage message, PeerId remote, bool keyRequired)
    {
        ArgumentNullException.ThrowIfNull(message);
        ArgumentNullException.ThrowIfNull(remote);
        if (message.PublicKey is not { } key)
        {
            if (keyRequired)
            {
                throw new SecureMeshException(SecureMeshErrorKind.Protocol, "the peer's identify answer has no public key");
            }
            return;
        }
        if (!PeerId.TryDecodeProtobufPublicKey(key, out var publicKey) || PeerId.FromPublicKey(publicKey) != remote)
        {
            throw new SecureMeshException(SecureMeshErrorKind.Protocol, $"the identify answer of {remote} carries a public key that is not its own");
        }
    }

    private async Task SendAsync(Stream stream, IdentifyMessage info, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(info);
        var encoded = info.Encode();
        using var deadline = new CancellationTokenSource(_timeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        try
        {
            await LengthPrefixed.WriteAsync(stream, encoded, linked.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (Translate(e, deadline) is { } error)
        {
            throw error;
        }
    }

    private async Task<IdentifyMessage> ReceiveAsync(Stream stream, PeerId remote, bool keyRequired, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(remote);
        using var deadline = new CancellationTokenSource(_timeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        try
        {
            IdentifyMessage? merged = null;
            for (var i = 0; i < MaxMessages; i++)
            {
                var message = await LengthPrefixed.ReadAsync(stream, IdentifyMessage.MaxSize, "identify message", linked.Token).ConfigureAwait(false);
                if (message is null)
                {
                    break;
                }
                merged = IdentifyMessage.DecodeInto(message, merged);
            }
            if (merged is null)
            {
                throw new SecureMeshException(SecureMeshErrorKind.Protocol, "the peer closed the identify stream without a message");
            }
            CheckKey(merged, remote, keyRequired);
            return merged;
        }
        catch (Exception e) when (Translate(e, deadline) is { } error)
        {
            throw error;
        }
    }

    private static SecureMeshException? Translate(Exception e, CancellationTokenSource deadline) => e switch
    {
        OperationCanceledException when deadline.IsCancellationRequested => new SecureMeshException(SecureMeshErrorKind.Network, "identify timed out", e),
        IOException or SocketException or ObjectDisposedException => new SecureMeshException(SecureMeshErrorKind.Network, "the identify stream broke", e),
        _ => null,
    };

    private static string Version()
    {
        var assembly = typeof(IdentifyService).Assembly;
        var version = assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
            ?? assembly.GetName().Version?.ToString(3)
            ?? "0.0.0";
        var plus = version.IndexOf('+', StringComparison.Ordinal);
        return plus < 0 ? version : version[..plus];
    }
}
