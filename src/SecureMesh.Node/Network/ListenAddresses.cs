using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using SecureMesh.Core.Identity;

namespace SecureMesh.Node.Network;

/// <summary>The addresses a node listening on an endpoint can be reached at, and their multiaddr forms.</summary>
public static class ListenAddresses
{
    /// <summary>
    /// <paramref name="listen"/> itself, or, for the unspecified address (0.0.0.0 or ::), the addresses of the machine's
    /// interfaces that are up (of that family; both for ::), with the same port. Loopback is listed too.
    /// </summary>
    public static IReadOnlyList<IPEndPoint> Expand(IPEndPoint listen)
    {
        ArgumentNullException.ThrowIfNull(listen);
        if (!listen.Address.Equals(IPAddress.Any) && !listen.Address.Equals(IPAddress.IPv6Any))
        {
            return [listen];
        }
        var wantV6 = listen.Address.Equals(IPAddress.IPv6Any);
        var found = new List<IPEndPoint>();
        try
        {
            foreach (var nic in NetworkInterface.GetAllNetworkInterfaces())
            {
                if (nic.OperationalStatus is not (OperationalStatus.Up or OperationalStatus.Unknown))
                {
                    continue;
                }
                foreach (var unicast in nic.GetIPProperties().UnicastAddresses)
                {
                    var address = unicast.Address;
                    var usable = address.AddressFamily == AddressFamily.InterNetwork
                        || (wantV6 && address.AddressFamily == AddressFamily.InterNetworkV6 && !address.IsIPv6LinkLocal);
                    if (usable)
                    {
                        found.Add(new IPEndPoint(address, listen.Port));
                    }
                }
            }
        }
        catch (NetworkInformationException)
        {
        }
        if (found.Count == 0)
        {
            found.Add(new IPEndPoint(wantV6 ? IPAddress.IPv6Loopback : IPAddress.Loopback, listen.Port));
        }
        // Loopback last, the rest in a stable order.
        return [.. found.Distinct().OrderBy(e => IPAddress.IsLoopback(e.Address) ? 1 : 0).ThenBy(e => e.Address.AddressFamily).ThenBy(e => e.ToString(), StringComparer.Ordinal)];
    }

    /// <summary>The text multiaddrs of <paramref name="listen"/> (expanded), each ending in <c>/p2p/</c><paramref name="peer"/>.</summary>
    public static IReadOnlyList<string> Multiaddrs(IPEndPoint listen, PeerId peer)
    {
        ArgumentNullException.ThrowIfNull(peer);
        return [.. Expand(listen).Select(e => MultiaddrBytes.Text(e) + "/p2p/" + peer.Text)];
    }
}
