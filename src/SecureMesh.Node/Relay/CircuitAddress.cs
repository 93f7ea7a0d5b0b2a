using System.Diagnostics.CodeAnalysis;
using SecureMesh.Core;
using SecureMesh.Core.Addressing;
using SecureMesh.Core.Identity;
using SecureMesh.Storage;

namespace SecureMesh.Node.Relay;

/// <summary>
/// A relayed address: <c>[/ip4|ip6|dns…/HOST/tcp/PORT]/p2p/RELAY/p2p-circuit[/p2p/TARGET]</c>. The relay part names the
/// relay (and, when it has a TCP part, where to dial it if not connected); the target, when given, must be the peer dialled.
/// </summary>
internal sealed record CircuitAddress(PeerId Relay, string? RelayAddress, PeerId? Target)
{
    /// <summary>False for an address without <c>/p2p-circuit</c>; a malformed relayed address throws <see cref="SecureMeshException"/> (InvalidInput).</summary>
    public static bool TryParse(string text, [NotNullWhen(true)] out CircuitAddress? circuit)
    {
        circuit = null;
        var trimmed = text.Trim();
        if (!trimmed.StartsWith('/') || !PeerAddressFormat.IsCircuit(trimmed))
        {
            return false;
        }
        var ma = Multiaddr.Parse(trimmed);
        var c = ma.Components;
        var at = -1;
        for (var i = 0; i < c.Count; i++)
        {
            if (c[i].Protocol == MultiaddrProtocol.P2pCircuit)
            {
                at = i;
                break;
            }
        }
        var tail = c.Count - at - 1;
        if (at < 1 || c[at - 1].Protocol != MultiaddrProtocol.P2p || !(tail == 0 || (tail == 1 && c[at + 1].Protocol == MultiaddrProtocol.P2p)))
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput,
                $"invalid relayed address {trimmed}: expected [/ip4|ip6|dns/HOST/tcp/PORT]/p2p/RELAY/p2p-circuit[/p2p/PEERID]");
        }
        if (!PeerId.TryParse(c[at - 1].Text, out var relay, out var error))
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, $"invalid relayed address {trimmed}: the relay: {error}");
        }
        PeerId? target = null;
        if (tail == 1)
        {
            if (!PeerId.TryParse(c[at + 1].Text, out target, out error))
            {
                throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, $"invalid relayed address {trimmed}: the peer: {error}");
            }
        }
        // The relay's own address: everything before /p2p-circuit, when it has more than the /p2p part.
        var relayAddress = at >= 2 ? string.Concat(c.Take(at).Select(x => x.ToString())) : null;
        circuit = new CircuitAddress(relay, relayAddress, target);
        return true;
    }
}
