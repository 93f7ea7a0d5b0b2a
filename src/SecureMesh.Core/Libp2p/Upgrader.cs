using System.Diagnostics;
using System.Net.Sockets;
using SecureMesh.Core.Channel;
using SecureMesh.Core.Identity;
using SecureMesh.Core.Libp2p.Multistream;

namespace SecureMesh.Core.Libp2p;

/// <summary>
/// Upgrades a connected byte stream (TCP) to a libp2p connection, as libp2p's connections spec orders it:
/// multistream-select chooses <c>/noise</c>; the Noise XX handshake (libp2p payload, our stream muxers in its extensions);
/// then the stream muxer: the first of the initiator's muxers that the responder also listed (inlined muxer negotiation),
/// or, when either side listed none, multistream-select over the secured stream. The whole upgrade has one deadline.
/// The upgrader owns the stream from the call on: any failure closes it and throws <see cref="SecureMeshException"/>
/// (Protocol, Network, Unauthorized for a Peer ID other than the one dialled, NotFound for no common protocol).
/// </summary>
public sealed class Upgrader
{
    /// <summary>The security protocol's ID in multistream-select.</summary>
    public const string NoiseProtocolId = "/noise";

    /// <summary>yamux's protocol ID.</summary>
    public const string YamuxProtocolId = "/yamux/1.0.0";

    private readonly NodeIdentity _identity;
    private readonly UpgraderOptions _options;
    private readonly byte[] _payload;

    /// <summary>An upgrader for connections of <paramref name="identity"/>.</summary>
    public Upgrader(NodeIdentity identity, UpgraderOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(identity);
        options ??= UpgraderOptions.Default;
        options.Validate();
        _identity = identity;
        _options = options;
        _payload = LocalStaticKey.For(identity).PayloadWith(options.StreamMuxers);
    }

    /// <summary>The stream muxers offered, in order of preference.</summary>
    public IReadOnlyList<string> StreamMuxers => _options.StreamMuxers;

    /// <summary>
    /// Upgrades a connection we dialled. When <paramref name="expected"/> is given, any other peer is refused
    /// (Unauthorized) before we send our identity. <paramref name="remote"/> only names the peer in logs.
    /// </summary>
    public Task<UpgradedConnection> UpgradeOutboundAsync(Stream stream, PeerId? expected, CancellationToken cancellationToken, string? remote = null) =>
        UpgradeAsync(stream, initiator: true, expected, remote, cancellationToken);

    /// <summary>Upgrades a connection we accepted.</summary>
    public Task<UpgradedConnection> UpgradeInboundAsync(Stream stream, CancellationToken cancellationToken, string? remote = null) =>
        UpgradeAsync(stream, initiator: false, null, remote, cancellationToken);

    /// <summary>
    /// The muxer both sides use: the first of the initiator's list that the responder also lists; null when either
    /// listed none (then multistream-select decides). No overlap is a failed handshake (inlined-muxer-negotiation.md).
    /// </summary>
    public static string? ChooseEarlyMuxer(IReadOnlyList<string> initiatorMuxers, IReadOnlyList<string> responderMuxers)
    {
        ArgumentNullException.ThrowIfNull(initiatorMuxers);
        ArgumentNullException.ThrowIfNull(responderMuxers);
        if (initiatorMuxers.Count == 0 || responderMuxers.Count == 0)
        {
            return null;
        }
        foreach (var muxer in initiatorMuxers)
        {
            foreach (var other in responderMuxers)
            {
                if (string.Equals(muxer, other, StringComparison.Ordinal))
                {
                    return muxer;
                }
            }
        }
        throw new SecureMeshException(SecureMeshErrorKind.Protocol, "the peer offers no stream muxer we support in the handshake");
    }

    private async Task<UpgradedConnection> UpgradeAsync(Stream stream, bool initiator, PeerId? expected, string? remote, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stream);
        using var deadline = new CancellationTokenSource(_options.HandshakeTimeout, _options.TimeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        var ct = linked.Token;
        var multistream = new MultistreamOptions
        {
            Timeout = _options.HandshakeTimeout,
            MaxProposals = _options.MaxProposals,
            TimeProvider = _options.TimeProvider,
        };
        // One buffer reads the whole upgrade (multistream-select lines and Noise messages that arrive together take one
        // read), and writes are held so that multistream-select's lines leave with a Noise message: the dialer proposes
        // /noise lazily (header, proposal and message 1 in one segment, the answer checked before message 2 is read), and
        // a listener whose dialer did so answers with message 2. Message 1 is an ephemeral key only, sent in the clear
        // anyway: a listener that refuses /noise learns nothing from it.
        var reader = new FrameReader(stream) { KeepBufferWhileWaiting = true };
        var upgrade = new UpgradeStream(stream, reader);
        Func<CancellationToken, Task>? checkAnswer = null;
        try
        {
            if (initiator)
            {
                upgrade.HoldWrites = true;
                await MultistreamSelect.WriteLazyProposalAsync(upgrade, NoiseProtocolId, ct).ConfigureAwait(false);
                upgrade.HoldWrites = false;
                checkAnswer = token => CheckNoiseAnswerAsync(upgrade, token);
            }
            else
            {
                upgrade.HoldWhilePeerBytesBuffered = true;
                await MultistreamSelect.NegotiateAsync(upgrade, p => p == NoiseProtocolId, [NoiseProtocolId], multistream, ct).ConfigureAwait(false);
                upgrade.HoldWhilePeerBytesBuffered = false;
            }
        }
        catch (Exception e)
        {
            reader.Dispose();
            await upgrade.DisposeAsync().ConfigureAwait(false);
            throw Failed(e, "security negotiation", remote, deadline, cancellationToken);
        }

        // The handshake logs its own failures, closes the stream and throws SecureMeshException (or the caller's cancellation).
        var handshake = await NoiseHandshake.RunHandshakeAsync(upgrade, reader, initiator, LocalStaticKey.For(_identity), _payload, expected, remote,
            _options.Logger, _options.FailureLog, checkAnswer, deadline, cancellationToken).ConfigureAwait(false);
        // Our last handshake message carried anything held; from here on the reader gives its buffer back while it waits.
        Debug.Assert(upgrade.HeldBytes == 0, "held bytes outlived the handshake");
        reader.KeepBufferWhileWaiting = false;
        var secured = new NoiseStream(stream, handshake);
        try
        {
            var remoteMuxers = handshake.RemoteProtocols;
            var early = initiator ? ChooseEarlyMuxer(_options.StreamMuxers, remoteMuxers) : ChooseEarlyMuxer(remoteMuxers, _options.StreamMuxers);
            if (early is not null)
            {
                return new UpgradedConnection(secured, early, muxerNegotiatedEarly: true, initiator);
            }
            var muxer = initiator
                ? await MultistreamSelect.SelectAsync(secured, _options.StreamMuxers, multistream, ct).ConfigureAwait(false)
                : await MultistreamSelect.NegotiateAsync(secured, _options.StreamMuxers.Contains, _options.StreamMuxers, multistream, ct).ConfigureAwait(false);
            return new UpgradedConnection(secured, muxer, muxerNegotiatedEarly: false, initiator);
        }
        catch (Exception e)
        {
            await secured.DisposeAsync().ConfigureAwait(false);
            throw Failed(e, "muxer negotiation with " + handshake.RemotePeer, remote, deadline, cancellationToken);
        }
    }

    /// <summary>The listener's answer to our lazy <c>/noise</c> proposal, failing as the security negotiation does.</summary>
    private static async Task CheckNoiseAnswerAsync(UpgradeStream upgrade, CancellationToken token)
    {
        try
        {
            await MultistreamSelect.ReadLazyAnswerAsync(upgrade, NoiseProtocolId, token).ConfigureAwait(false);
        }
        catch (SecureMeshException e)
        {
            throw new SecureMeshException(e.Kind, "security negotiation failed: " + e.Message, e);
        }
    }

    /// <summary>Logs (throttled) and maps a failure; the caller's own cancellation stays an OperationCanceledException.</summary>
    private Exception Failed(Exception e, string phase, string? remote, CancellationTokenSource deadline, CancellationToken cancellationToken)
    {
        Exception error = e switch
        {
            OperationCanceledException when cancellationToken.IsCancellationRequested => e,
            OperationCanceledException when deadline.IsCancellationRequested => new SecureMeshException(SecureMeshErrorKind.Network, $"{phase} timed out", e),
            SecureMeshException sme => new SecureMeshException(sme.Kind, $"{phase} failed: {sme.Message}", sme),
            IOException or SocketException or ObjectDisposedException => new SecureMeshException(SecureMeshErrorKind.Network, $"connection lost during {phase}", e),
            _ => e,
        };
        if (_options.Logger is { } logger && error is SecureMeshException)
        {
            ChannelLog.HandshakeFailed(logger, _options.FailureLog, remote, error.Message);
        }
        return error;
    }
}
