using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using SecureMesh.Core;
using SecureMesh.Core.Addressing;
using SecureMesh.Core.Identity;
using SecureMesh.Core.Libp2p.AutoNat;
using SecureMesh.Core.Libp2p.Multistream;
using SecureMesh.Core.Libp2p.Yamux;
using SecureMesh.Node.Network;

namespace SecureMesh.Node.AutoNat;

/// <summary>
/// The AutoNAT v2 server: a trusted peer (only they have sessions; strangers never get a stream) asks whether an
/// address of theirs is reachable; this node dials it back once and says how it went. It dials only an address with the
/// IP it sees the peer at (the amplification guard refuses anything else unless <see cref="AutoNatOptions.AllowOtherIp"/>,
/// and then only after the spec's dial-data payment), never a private one unless allowed, and each peer is rate-limited.
/// </summary>
internal sealed class AutoNatServer
{
    private readonly AutoNatOptions _options;
    private readonly ILogger _logger;
    private readonly Dictionary<PeerId, Queue<DateTimeOffset>> _perPeer = [];
    private readonly Queue<DateTimeOffset> _all = new();
    private MeshNode? _node;

    public AutoNatServer(AutoNatOptions options, ILogger logger)
    {
        _options = options;
        _logger = logger;
    }

    public StreamProtocol Protocol => new(AutoNatMessages.DialRequestProtocol, ServeAsync, 1);

    /// <summary>The node whose identity and transport dial back (set once it has started).</summary>
    public void Attach(MeshNode node) => _node = node;

    internal async Task ServeAsync(PeerSession session, Stream stream, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_options.DialTimeout * 3);
        var ct = timeout.Token;
        try
        {
            if (await AutoNatMessages.ReadAsync(stream, ct).ConfigureAwait(false) is not DialRequest request)
            {
                throw new SecureMeshException(SecureMeshErrorKind.Protocol, "the first message is not a DialRequest");
            }
            if (_node is null || !TryAdmit(session.PeerId))
            {
                AutoNatLog.Refused(_logger, session.PeerId.Text, "over the rate limit");
                await AutoNatMessages.WriteAsync(stream, new DialResponse(ResponseStatus.RequestRejected, 0, DialStatus.Unused), ct).ConfigureAwait(false);
                return;
            }
            var (index, target, needsPayment) = Select(session, request);
            if (target is null)
            {
                await AutoNatMessages.WriteAsync(stream, new DialResponse(ResponseStatus.DialRefused, 0, DialStatus.Unused), ct).ConfigureAwait(false);
                return;
            }
            if (needsPayment)
            {
                await AutoNatMessages.WriteAsync(stream, new DialDataRequest((uint)index, _options.DialDataBytes), ct).ConfigureAwait(false);
                await ReceivePaymentAsync(stream, ct).ConfigureAwait(false);
            }
            var status = await DialBackAsync(_node, session.PeerId, target, request.Nonce, cancellationToken).ConfigureAwait(false);
            AutoNatLog.DialedBack(_logger, session.PeerId.Text, target.ToString(), status.ToString());
            await AutoNatMessages.WriteAsync(stream, new DialResponse(ResponseStatus.Ok, (uint)index, status), ct).ConfigureAwait(false);
        }
        catch (SecureMeshException e) when (e.Kind == SecureMeshErrorKind.Protocol)
        {
            // Garbage, an oversized message, a wrong message: the stream is reset, the session stays.
            AutoNatLog.ProtocolError(_logger, session.PeerId.Text, e.Message);
            (stream as YamuxStream)?.Reset();
        }
    }

    /// <summary>The first address this node will dial: TCP, public (unless allowed), at the requester's observed IP (unless allowed, with payment).</summary>
    private (int Index, IPEndPoint? Target, bool NeedsPayment) Select(PeerSession session, DialRequest request)
    {
        var observed = session.RemoteEndPoint?.Address is { } seen ? (seen.IsIPv4MappedToIPv6 ? seen.MapToIPv4() : seen) : null;
        string? refusal = request.Addrs.Count == 0 ? "no addresses" : null;
        for (var i = 0; i < request.Addrs.Count; i++)
        {
            if (!Multiaddr.TryFromBytes(request.Addrs[i], out var address, out _) || NodeReach.TcpEndPoint(address) is not { } endPoint)
            {
                refusal ??= "no TCP address";
                continue;
            }
            var ip = endPoint.Address.IsIPv4MappedToIPv6 ? endPoint.Address.MapToIPv4() : endPoint.Address;
            if (!_options.AllowPrivateAddresses && AutoNatOptions.IsPrivate(ip))
            {
                refusal ??= $"{address} is a private address";
                continue;
            }
            if (observed is not null && ip.Equals(observed))
            {
                return (i, new IPEndPoint(ip, endPoint.Port), false);
            }
            if (_options.AllowOtherIp && observed is not null && ip.AddressFamily == observed.AddressFamily)
            {
                return (i, new IPEndPoint(ip, endPoint.Port), true);
            }
            refusal = $"{address} is not at the IP the peer connects from ({observed}): a third party's address is never dialled";
        }
        AutoNatLog.Refused(_logger, session.PeerId.Text, refusal ?? "nothing to dial");
        return (-1, null, false);
    }

    /// <summary>Reads DialDataResponses until the asked amount has arrived; anything else (or far too many messages) is a protocol error.</summary>
    private async Task ReceivePaymentAsync(Stream stream, CancellationToken ct)
    {
        ulong received = 0;
        var messages = 0;
        var maxMessages = (int)Math.Min(int.MaxValue, (_options.DialDataBytes / 1024) + 64);
        while (received < _options.DialDataBytes)
        {
            var message = await AutoNatMessages.ReadAsync(stream, ct).ConfigureAwait(false);
            if (message is not DialDataResponse data)
            {
                throw new SecureMeshException(SecureMeshErrorKind.Protocol, message is null ? "the stream ended before the dial data" : "expected dial data");
            }
            if (++messages > maxMessages)
            {
                throw new SecureMeshException(SecureMeshErrorKind.Protocol, "dial data in too many small pieces");
            }
            received += (ulong)data.DataLength;
        }
    }

    /// <summary>Dials <paramref name="target"/> expecting <paramref name="peer"/>'s key and delivers the nonce on a dial-back stream.</summary>
    internal async Task<DialStatus> DialBackAsync(MeshNode node, PeerId peer, IPEndPoint target, ulong nonce, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_options.DialTimeout);
        Core.Libp2p.UpgradedConnection connection;
        try
        {
            connection = await node.DialSideConnectionAsync(peer, target, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SecureMeshException or SocketException or IOException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            return DialStatus.DialError;
        }
        await using (connection.ConfigureAwait(false))
        {
            var muxer = node.OpenMuxer(connection);
            await using (muxer.ConfigureAwait(false))
            {
                try
                {
                    var stream = await muxer.OpenStreamAsync(timeout.Token).ConfigureAwait(false);
                    await using (stream.ConfigureAwait(false))
                    {
                        await MultistreamSelect.SelectAsync(stream, [AutoNatMessages.DialBackProtocol], node.Negotiation, timeout.Token).ConfigureAwait(false);
                        await AutoNatMessages.WriteDialBackAsync(stream, nonce, timeout.Token).ConfigureAwait(false);
                        var answer = await AutoNatMessages.ReadDialBackResponseAsync(stream, timeout.Token).ConfigureAwait(false);
                        return answer == 0 ? DialStatus.Ok : DialStatus.DialBackError;
                    }
                }
                catch (Exception e) when (e is SecureMeshException or IOException or ObjectDisposedException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
                {
                    return DialStatus.DialBackError;
                }
            }
        }
    }

    private bool TryAdmit(PeerId peer)
    {
        var now = _options.Time.GetUtcNow();
        lock (_perPeer)
        {
            if (!_perPeer.TryGetValue(peer, out var times))
            {
                if (_perPeer.Count >= 4096)
                {
                    _perPeer.Clear();
                }
                _perPeer[peer] = times = new Queue<DateTimeOffset>();
            }
            Expire(times, now);
            Expire(_all, now);
            if (times.Count >= _options.RequestsPerPeer || _all.Count >= _options.RequestsTotal)
            {
                return false;
            }
            times.Enqueue(now);
            _all.Enqueue(now);
            return true;
        }
    }

    private void Expire(Queue<DateTimeOffset> times, DateTimeOffset now)
    {
        while (times.Count > 0 && now - times.Peek() >= _options.RateWindow)
        {
            times.Dequeue();
        }
    }
}
