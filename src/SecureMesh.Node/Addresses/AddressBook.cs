using System.Net;
using Microsoft.Extensions.Logging;
using SecureMesh.Core;
using SecureMesh.Core.Addressing;
using SecureMesh.Core.Identity;
using SecureMesh.Core.Libp2p;
using SecureMesh.Core.Libp2p.Yamux;
using SecureMesh.Node.Network;
using SecureMesh.Storage;

namespace SecureMesh.Node.Addresses;

/// <summary>
/// Addresses learned, not typed. What a trusted peer advertises in identify (its listen, mapped and AutoNAT-confirmed
/// addresses) is stored for it; <c>/securemesh/addrs/1.0.0</c> asks a connected trusted peer where another peer can be
/// reached, and is answered only about a peer the answerer trusts, to a peer it trusts (only trusted peers have sessions).
/// The connector tries stored addresses by last success, then asks around when none works.
/// </summary>
internal sealed class AddressBook
{
    private readonly SecureMeshDatabase _db;
    private readonly ILogger _logger;
    private readonly TimeSpan _timeout;
    private MeshNode? _node;

    public AddressBook(SecureMeshDatabase db, ILogger logger, TimeSpan? timeout = null)
    {
        _db = db;
        _logger = logger;
        _timeout = timeout ?? TimeSpan.FromSeconds(5);
    }

    public StreamProtocol Protocol => new(AddressExchangeMessages.ProtocolId, ServeAsync, 2);

    public void Attach(MeshNode node)
    {
        _node = node;
        node.PeerIdentified += Remember;
    }

    /// <summary>Stores what a trusted peer says its addresses are (TCP ones; at most the store's cap).</summary>
    private void Remember(PeerSession session)
    {
        var addresses = NodeReach.TcpEndPoints(session.Identified?.ListenAddrs ?? [])
            .Where(e => !e.Address.Equals(IPAddress.Any) && !e.Address.Equals(IPAddress.IPv6Any) && e.Port != 0)
            .Select(PeerAddressFormat.FromEndPoint)
            .ToList();
        try
        {
            _db.LearnedAddresses.Learn(session.PeerId, addresses, "identify");
            _db.LearnedAddresses.Learn(session.PeerId, Circuits(session.Identified?.ListenAddrs ?? []), "relay");
        }
        catch (SecureMeshException e)
        {
            AddressLog.StoreFailed(_logger, e.Message);
        }
    }

    /// <summary>The relayed (<c>/p2p-circuit</c>) addresses among binary multiaddrs, as text; the store checks their shape.</summary>
    private static List<string> Circuits(IEnumerable<byte[]> multiaddrs) =>
        [.. multiaddrs.Select(bytes => Multiaddr.TryFromBytes(bytes, out var m, out _) ? m : null)
            .Where(m => m is not null && m.Components.Any(c => c.Protocol == MultiaddrProtocol.P2pCircuit)).Select(m => m!.ToString())];

    /// <summary>Answers "where is X?" from the asker's session: nothing unless X is trusted here.</summary>
    private async Task ServeAsync(PeerSession asker, Stream stream, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_timeout);
        try
        {
            var target = await AddressExchangeMessages.ReadRequestAsync(stream, timeout.Token).ConfigureAwait(false);
            var answer = target.Equals(asker.PeerId) || _db.Trust.GetPeer(target)?.State != PeerState.Trusted ? [] : WhereIs(target);
            AddressLog.Answered(_logger, asker.PeerId.Text, target.Text, answer.Count);
            await AddressExchangeMessages.WriteAnswerAsync(stream, answer, timeout.Token).ConfigureAwait(false);
        }
        catch (SecureMeshException e) when (e.Kind == SecureMeshErrorKind.Protocol)
        {
            (stream as YamuxStream)?.Reset();
        }
    }

    /// <summary>Where this node would dial <paramref name="peer"/>: its live session's addresses first, then what worked before.</summary>
    internal List<byte[]> WhereIs(PeerId peer)
    {
        var found = new List<IPEndPoint>();
        var circuits = new List<string>();
        if (_node?.GetSession(peer) is { } live)
        {
            circuits.AddRange(Circuits(live.Identified?.ListenAddrs ?? []));
            var advertised = NodeReach.TcpEndPoints(live.Identified?.ListenAddrs ?? []).ToList();
            found.AddRange(advertised);
            if (live.RemoteEndPoint is { } remote)
            {
                // Where the peer's connection really comes from, with each port it listens on: its home IP, even when it does not know it.
                found.AddRange(advertised.Select(a => a.Port).Distinct().Select(port => new IPEndPoint(remote.Address, port)));
            }
        }
        var stored = _db.LearnedAddresses.List(peer).Where(a => a.LastSuccess is not null).Select(a => a.Address)
            .Concat((_db.Trust.GetPeer(peer)?.Addresses ?? []).Where(a => a.LastSeen is not null).OrderByDescending(a => a.LastSeen).Select(a => a.Address));
        foreach (var text in stored)
        {
            if (IPEndPoint.TryParse(text, out var endPoint) && endPoint.Port != 0)
            {
                found.Add(endPoint);
            }
            else if (Multiaddr.TryParse(text, out var multiaddr) && NodeReach.TcpEndPoint(multiaddr) is { } fromMultiaddr)
            {
                found.Add(fromMultiaddr);
            }
        }
        // Its relayed addresses too (what it advertises now, else what worked here), after the direct ones.
        circuits.AddRange(_db.LearnedAddresses.List(peer).Where(a => a.Source == "relay" && a.LastSuccess is not null).Select(a => a.Address));
        return [.. found.Where(e => e.Port != 0 && !e.Address.Equals(IPAddress.Any) && !e.Address.Equals(IPAddress.IPv6Any))
            .Distinct().Select(MultiaddrBytes.From)
            .Concat(circuits.Distinct(StringComparer.Ordinal).Select(c => Multiaddr.Parse(c).ToBytes()))
            .Take(AddressExchangeMessages.MaxAddrs)];
    }

    /// <summary>Asks every connected trusted peer that speaks the protocol where <paramref name="peer"/> is; stores and returns the new addresses.</summary>
    public async Task<IReadOnlyList<string>> AskAsync(PeerId peer, CancellationToken cancellationToken)
    {
        var node = _node;
        if (node is null)
        {
            return [];
        }
        var learned = new List<string>();
        foreach (var session in node.Sessions.Where(s => !s.PeerId.Equals(peer)
                     && s.Identified?.Protocols.Contains(AddressExchangeMessages.ProtocolId, StringComparer.Ordinal) == true))
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(_timeout);
            Stream? stream = null;
            try
            {
                stream = await session.OpenStreamAsync(AddressExchangeMessages.ProtocolId, timeout.Token).ConfigureAwait(false);
                await AddressExchangeMessages.WriteRequestAsync(stream, peer, timeout.Token).ConfigureAwait(false);
                var answer = await AddressExchangeMessages.ReadAnswerAsync(stream, timeout.Token).ConfigureAwait(false);
                var addresses = NodeReach.TcpEndPoints(answer).Select(PeerAddressFormat.FromEndPoint).ToList();
                _db.LearnedAddresses.Learn(peer, addresses, "exchange");
                // Relayed addresses are kept only through a relay trusted here (the store checks), and tried after the direct ones.
                var circuits = Circuits(answer);
                _db.LearnedAddresses.Learn(peer, circuits, "relay");
                var kept = _db.LearnedAddresses.List(peer).Select(a => a.Address).ToHashSet(StringComparer.Ordinal);
                addresses.AddRange(circuits.Where(kept.Contains));
                AddressLog.Learned(_logger, peer.Text, session.PeerId.Text, addresses.Count);
                learned.AddRange(addresses);
            }
            catch (Exception e) when (e is SecureMeshException or IOException or ObjectDisposedException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
            {
                (stream as YamuxStream)?.Reset();
                AddressLog.AskFailed(_logger, session.PeerId.Text, peer.Text, e.Message);
            }
            finally
            {
                if (stream is not null)
                {
                    await stream.DisposeAsync().ConfigureAwait(false);
                }
            }
        }
        return [.. learned.Distinct(StringComparer.Ordinal)];
    }
}
