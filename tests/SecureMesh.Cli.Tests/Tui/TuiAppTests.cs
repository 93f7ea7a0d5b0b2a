using SecureMesh.Cli.Tui;
using SecureMesh.Core;
using Terminal.Gui.Input;

namespace SecureMesh.Cli.Tests.Tui;

/// <summary>Terminal.Gui keeps some process-wide state, so the UI tests run one at a time.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TuiCollection
{
    public const string Name = "tui";
}

[Collection(TuiCollection.Name)]
public sealed class TuiAppTests
{
    [Fact]
    public void Top_bar_shows_peer_id_fingerprint_listen_address_and_connections_at_80x24()
    {
        using var h = new TuiHarness();
        var lines = h.Screen.Split('\n');
        Assert.Contains(FakeNodeClient.SelfId, lines[0], StringComparison.Ordinal);
        Assert.Contains(h.Client.Status.Fingerprint, lines[1], StringComparison.Ordinal);
        Assert.Contains("0.0.0.0:4747", lines[1], StringComparison.Ordinal);
        Assert.Contains("Connections 2", lines[1], StringComparison.Ordinal);
        Assert.Contains("Ctrl+Q quit", h.Screen, StringComparison.Ordinal);
        Assert.All(lines.Where(l => l.Length > 0), l => Assert.True(l.TrimEnd('\r').Length <= 80, l));
    }

    [Fact]
    public void Peers_view_lists_name_state_online_fingerprint_and_sas()
    {
        using var h = new TuiHarness(width: 120, height: 40);
        h.WaitForScreen("alice");
        var screen = h.Screen;
        Assert.Contains("trusted", screen, StringComparison.Ordinal);
        Assert.Contains("pending", screen, StringComparison.Ordinal);
        Assert.Contains("blocked", screen, StringComparison.Ordinal);
        Assert.Contains(FakeNodeClient.PeerIdOf(2).Fingerprint, screen, StringComparison.Ordinal);
        Assert.Contains("tango-lima-42", screen, StringComparison.Ordinal);
        Assert.Contains(Fmt.ShortId(FakeNodeClient.AliceId), screen, StringComparison.Ordinal);
    }

    public static TheoryData<string, string, string> Views => new()
    {
        { "F1", "1", "alice" },
        { "F2", "2", "/srv/films" },
        { "F3", "3", "Find:" },
        { "F4", "4", "holiday.mkv" },
        { "F5", "5", "setup.exe" },
        { "F6", "6", "peer.blocked" },
        { "F7", "7", "family" },
    };

    [Theory]
    [MemberData(nameof(Views))]
    public void Each_view_is_one_key_away_and_renders_the_clients_data_at_80x24(string functionKey, string digit, string expected)
    {
        using var h = new TuiHarness();
        var index = int.Parse(digit, System.Globalization.CultureInfo.InvariantCulture) - 1;
        // Start elsewhere so the key really moves.
        h.Press(index == 0 ? Key.F2 : Key.F1);
        Assert.True(Key.TryParse(functionKey, out var fKey));
        h.Press(fKey);
        h.WaitForScreen(expected);
        Assert.Same(h.Tui.CurrentPage.Title, h.Tui.CurrentPage.Title);
        Assert.Contains($"[F{index + 1} {h.Tui.CurrentPage.Title}]", h.Screen, StringComparison.Ordinal);
        Assert.Contains(h.Tui.CurrentPage.HelpText, h.Screen, StringComparison.Ordinal);

        h.Press(index == 0 ? Key.F2 : Key.F1);
        Assert.True(Key.TryParse(digit, out var digitKey));
        h.Press(digitKey);
        h.WaitForScreen(expected);
        Assert.Contains($"[F{index + 1} ", h.Screen, StringComparison.Ordinal);
    }

    [Fact]
    public void A_click_on_a_tab_switches_the_view()
    {
        using var h = new TuiHarness();
        var tabRow = h.Screen.Split('\n')[2];
        var column = tabRow.IndexOf("F5 Quarantine", StringComparison.Ordinal) + 3;
        foreach (var flags in new[] { Terminal.Gui.Input.MouseFlags.LeftButtonPressed, Terminal.Gui.Input.MouseFlags.LeftButtonReleased, Terminal.Gui.Input.MouseFlags.LeftButtonClicked })
        {
            h.App.Mouse.RaiseMouseEvent(new Terminal.Gui.Input.Mouse { Flags = flags, ScreenPosition = new System.Drawing.Point(column, 2) });
        }
        h.Pump();
        Assert.Same(h.Tui.Quarantine, h.Tui.CurrentPage);
        h.WaitForScreen("setup.exe");
    }

    [Fact]
    public void A_bug_in_a_view_handler_is_a_message_not_a_crash()
    {
        using var h = new TuiHarness();
        h.Press(Key.F6);
        h.Tui.Post(() => throw new InvalidOperationException("layout bug"));
        h.WaitForDialog("layout bug");
        h.Press(Key.F1);
        h.WaitForScreen("alice");
    }

    [Fact]
    public void Shares_view_shows_indexing_progress()
    {
        using var h = new TuiHarness();
        h.Press(Key.F2);
        h.WaitForScreen("/srv/films");
        Assert.Contains("[#####-----]  50%", h.Screen, StringComparison.Ordinal);
        Assert.Contains("done", h.Screen, StringComparison.Ordinal);
    }

    [Fact]
    public void Trust_confirmation_shows_fingerprint_and_sas_and_cancel_does_not_trust()
    {
        using var h = new TuiHarness();
        SelectPeer(h, "bob");
        h.Dialogs.Enqueue(d => d.Key(Key.Enter)); // the default answer is Cancel
        h.Press(Key.T);
        h.WaitForDialog("Trust peer");
        var dialog = h.SeenDialogs[^1];
        Assert.Contains(FakeNodeClient.PeerIdOf(3).Fingerprint, dialog, StringComparison.Ordinal);
        Assert.Contains("echo-kilo-17", dialog, StringComparison.Ordinal);
        Assert.Contains(FakeNodeClient.BobId, dialog, StringComparison.Ordinal);
        Thread.Sleep(50);
        h.Pump();
        Assert.False(h.Client.Called("TrustAsync"));
    }

    [Fact]
    public void Trust_is_called_only_after_confirming()
    {
        using var h = new TuiHarness();
        SelectPeer(h, "bob");
        var trustedBeforeAnswer = true;
        h.Dialogs.Enqueue(d =>
        {
            trustedBeforeAnswer = h.Client.Called("TrustAsync");
            Assert.Contains(FakeNodeClient.PeerIdOf(3).Fingerprint, d.Screen, StringComparison.Ordinal);
            d.Press("Trust");
        });
        h.Press(Key.T);
        h.WaitFor(() => h.Client.Called($"TrustAsync {FakeNodeClient.BobId}"), "TrustAsync");
        Assert.False(trustedBeforeAnswer);
        h.WaitFor(() => h.Tui.Peers.Rows.Single(p => p.Name == "bob").State == PeerViewState.Trusted, "the refreshed table");
    }

    [Fact]
    public void Add_peer_with_a_bad_peer_id_shows_the_parse_error_and_the_dialog_keeps_what_was_typed()
    {
        using var h = new TuiHarness();
        h.Dialogs.Enqueue(d =>
        {
            d.Fields[0].Text = "12D3KooWnot-a-peer-id";
            d.Fields[1].Text = "192.0.2.55:4747";
            d.Fields[2].Text = "carol";
            d.Press("OK");
        });
        h.Dialogs.Enqueue(d => d.Press("OK"));
        string[]? reopened = null;
        h.Dialogs.Enqueue(d =>
        {
            reopened = [.. d.Fields.Select(f => f.Text)];
            d.Press("Cancel");
        });
        h.Press(Key.A);
        h.WaitForDialog("invalid Peer ID");
        h.WaitFor(() => reopened is not null, "the add dialog to open again");
        Assert.Equal(["12D3KooWnot-a-peer-id", "192.0.2.55:4747", "carol", string.Empty], reopened!);
        Assert.False(h.Client.Called("AddPeerAsync"));
    }

    [Fact]
    public void Add_peer_refuses_a_fingerprint_that_does_not_match_and_accepts_the_right_one()
    {
        using var h = new TuiHarness();
        var carol = FakeNodeClient.PeerIdOf(5);
        var other = FakeNodeClient.PeerIdOf(6);
        h.Dialogs.Enqueue(d =>
        {
            d.Fields[0].Text = carol.Text;
            d.Fields[3].Text = other.Fingerprint;
            d.Press("OK");
        });
        h.Dialogs.Enqueue(d => d.Press("OK"));
        h.Dialogs.Enqueue(d =>
        {
            Assert.Equal(carol.Text, d.Fields[0].Text);
            d.Fields[3].Text = carol.Fingerprint;
            d.Press("OK");
        });
        h.Dialogs.Enqueue(d =>
        {
            Assert.Contains(carol.Fingerprint, d.Screen, StringComparison.Ordinal);
            Assert.Contains("it matches the fingerprint you typed", d.Screen, StringComparison.Ordinal);
            d.Press("Trust");
        });
        h.Press(Key.A);
        h.WaitFor(() => h.Client.Called($"AddPeerAsync {carol.Text} null null True"), "AddPeerAsync");
        Assert.Contains(h.SeenDialogs, d => d.Contains("fingerprint mismatch", StringComparison.Ordinal));
        Assert.Equal(1, h.Client.Calls.Count(c => c.StartsWith("AddPeerAsync", StringComparison.Ordinal)));
    }

    [Fact]
    public void Add_peer_shows_the_fingerprint_and_can_add_it_pending()
    {
        using var h = new TuiHarness();
        var carol = FakeNodeClient.PeerIdOf(5);
        h.Dialogs.Enqueue(d =>
        {
            d.Fields[0].Text = carol.Text;
            d.Fields[1].Text = "192.0.2.55:4747";
            d.Fields[2].Text = "carol";
            d.Press("OK");
        });
        h.Dialogs.Enqueue(d =>
        {
            Assert.Contains(carol.Fingerprint, d.Screen, StringComparison.Ordinal);
            d.Press("Add as pending");
        });
        h.Press(Key.A);
        h.WaitFor(() => h.Client.Called($"AddPeerAsync {carol.Text} 192.0.2.55:4747 carol False"), "AddPeerAsync");
        h.WaitForScreen("carol");
    }

    [Fact]
    public void Add_peer_takes_a_relayed_address_and_refuses_one_through_the_peer_itself()
    {
        using var h = new TuiHarness();
        var carol = FakeNodeClient.PeerIdOf(5);
        var relay = FakeNodeClient.PeerIdOf(6);
        h.Dialogs.Enqueue(d =>
        {
            d.Fields[0].Text = carol.Text;
            d.Fields[1].Text = $"/p2p/{carol.Text}/p2p-circuit";
            d.Press("OK");
        });
        h.Dialogs.Enqueue(d => d.Press("OK"));
        h.Dialogs.Enqueue(d =>
        {
            Assert.Equal($"/p2p/{carol.Text}/p2p-circuit", d.Fields[1].Text);
            d.Fields[1].Text = $"/p2p/{relay.Text}/p2p-circuit";
            d.Press("OK");
        });
        h.Dialogs.Enqueue(d => d.Press("Add as pending"));
        h.Press(Key.A);
        h.WaitFor(() => h.Client.Called($"AddPeerAsync {carol.Text} /p2p/{relay.Text}/p2p-circuit null False"), "AddPeerAsync");
        // The error dialog wraps its text: its parts are checked one by one.
        Assert.Contains(h.SeenDialogs, d => d.Contains("invalid peer address for", StringComparison.Ordinal) && d.Contains("third peer", StringComparison.Ordinal));
        Assert.Equal(1, h.Client.Calls.Count(c => c.StartsWith("AddPeerAsync", StringComparison.Ordinal)));
        // The relay is no peer of ours: the address is kept, and the UI says it is dialled only once the relay is trusted.
        h.WaitFor(() => h.SeenDialogs.Any(d => d.Contains("Added. Note:", StringComparison.Ordinal) && d.Contains("which is not trusted", StringComparison.Ordinal)), "the untrusted-relay note");
    }

    [Fact]
    public void Add_peer_through_a_trusted_relay_adds_it_without_a_note()
    {
        using var h = new TuiHarness();
        h.WaitForScreen("alice");
        var carol = FakeNodeClient.PeerIdOf(5);
        var throughAlice = $"/p2p/{FakeNodeClient.AliceId}/p2p-circuit";
        h.Dialogs.Enqueue(d =>
        {
            d.Fields[0].Text = carol.Text;
            d.Fields[1].Text = throughAlice;
            d.Press("OK");
        });
        h.Dialogs.Enqueue(d => d.Press("Add as pending"));
        h.Press(Key.A);
        h.WaitFor(() => h.Client.Called($"AddPeerAsync {carol.Text} {throughAlice} null False"), "AddPeerAsync");
        h.WaitForScreen(Fmt.ShortId(carol.Text));
        Assert.DoesNotContain(h.SeenDialogs, d => d.Contains("Note:", StringComparison.Ordinal));
    }

    [Fact]
    public void Block_asks_for_a_reason_and_unblock_and_rename_and_remove_reach_the_client()
    {
        using var h = new TuiHarness();
        SelectPeer(h, "bob");
        h.Dialogs.Enqueue(d =>
        {
            d.Fields[0].Text = "sent junk";
            d.Press("OK");
        });
        h.Press(Key.B);
        h.WaitFor(() => h.Client.Called($"BlockAsync {FakeNodeClient.BobId} sent junk"), "BlockAsync");

        SelectPeer(h, "mallory");
        h.Press(Key.U);
        h.WaitFor(() => h.Client.Called($"UnblockAsync {FakeNodeClient.MalloryId}"), "UnblockAsync");

        SelectPeer(h, "alice");
        h.Dialogs.Enqueue(d =>
        {
            d.Fields[0].Text = "alice2";
            d.Press("OK");
        });
        h.Press(Key.N);
        h.WaitFor(() => h.Client.Called($"RenameAsync {FakeNodeClient.AliceId} alice2"), "RenameAsync");
        h.WaitForScreen("alice2");

        SelectPeer(h, "alice2");
        h.Dialogs.Enqueue(d => d.Press("Remove"));
        h.Press(Key.X);
        h.WaitFor(() => h.Client.Called($"RemoveAsync {FakeNodeClient.AliceId}"), "RemoveAsync");
    }

    [Fact]
    public void An_error_from_the_client_shows_as_a_message_and_the_ui_keeps_going()
    {
        using var h = new TuiHarness();
        SelectPeer(h, "mallory");
        h.Client.Faults["UnblockAsync"] = new SecureMeshException(SecureMeshErrorKind.Storage, "database is locked");
        h.Press(Key.U);
        h.WaitForDialog("database is locked");
        Assert.Contains("Unblock failed", h.SeenDialogs[^1], StringComparison.Ordinal);

        h.Client.Faults["RemoveAsync"] = new InvalidOperationException("boom");
        h.Dialogs.Enqueue(d => d.Press("Remove"));
        h.Press(Key.X);
        h.WaitForDialog("unexpected error (InvalidOperationException): boom");
        Assert.DoesNotContain("   at ", string.Join('\n', h.SeenDialogs), StringComparison.Ordinal);

        h.Press(Key.F2);
        h.WaitForScreen("/srv/films");
    }

    [Fact]
    public void A_failing_poll_shows_one_message_and_the_status_line()
    {
        using var h = new TuiHarness();
        h.Client.Faults["ListPeersAsync"] = new SecureMeshException(SecureMeshErrorKind.Network, "the node is not running");
        h.Refresh(() => h.SeenDialogs.Count == 1, "the error message");
        Assert.Contains("the node is not running", h.SeenDialogs[0], StringComparison.Ordinal);
        h.Refresh(() => h.Screen.Contains("node: the node is not running", StringComparison.Ordinal), "the status line");
        h.Refresh(() => h.Client.Calls.Count(c => c.StartsWith("ListPeersAsync", StringComparison.Ordinal)) >= 3, "another poll");
        Assert.Single(h.SeenDialogs);
    }

    [Fact]
    public void A_slow_client_never_blocks_the_ui_and_times_out_with_a_message()
    {
        using var h = new TuiHarness(callTimeout: TimeSpan.FromMilliseconds(300));
        h.Client.Delays["FetchAsync"] = TimeSpan.FromSeconds(30);
        h.Press(Key.F3);
        h.Tui.Search.Query.Text = "holiday";
        h.Tui.Search.RunSearch();
        h.WaitForScreen("holiday.mkv");
        var started = DateTime.UtcNow;
        h.Press(Key.F);
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(1), "the key press returned at once");
        h.Press(Key.F2);
        h.WaitForScreen("/srv/films");
        h.WaitForDialog("no answer from the node within 0.3 s");
    }

    [Fact]
    public void Add_share_of_a_missing_path_is_a_message_and_an_existing_one_reaches_the_client()
    {
        using var h = new TuiHarness();
        h.Press(Key.F2);
        h.Dialogs.Enqueue(d =>
        {
            d.Fields[0].Text = "/no/such/place";
            d.Press("OK");
        });
        h.Press(Key.A);
        h.WaitForDialog("no such file or folder: /no/such/place");
        Assert.False(h.Client.Called("AddShareAsync"));

        var dir = Directory.CreateTempSubdirectory("securemesh-share-").FullName;
        try
        {
            h.Dialogs.Enqueue(d =>
            {
                d.Fields[0].Text = dir;
                d.Press("OK");
            });
            h.Press(Key.A);
            h.WaitFor(() => h.Client.Called($"AddShareAsync {dir}"), "AddShareAsync");
            h.WaitForScreen(Path.GetFileName(dir));
        }
        finally
        {
            Directory.Delete(dir);
        }
    }

    [Fact]
    public void Search_shows_results_and_fetches_the_selected_one()
    {
        using var h = new TuiHarness();
        h.Press(Key.F3);
        Assert.True(h.Tui.Search.Query.HasFocus);
        foreach (var c in "notes")
        {
            h.Press(new Key(c));
        }
        h.Press(Key.Enter);
        h.WaitForScreen("holiday-notes.txt");
        Assert.Contains("1 result(s)", h.Screen, StringComparison.Ordinal);
        Assert.Contains("1.2 KiB", h.Screen, StringComparison.Ordinal);
        h.Press(Key.F);
        h.WaitFor(() => h.Client.Called("FetchAsync b3:2222bbbb"), "FetchAsync");
    }

    [Fact]
    public void Transfers_show_progress_rate_peers_and_time_left_and_cancel_after_confirming()
    {
        using var h = new TuiHarness();
        h.Press(Key.F4);
        h.WaitForScreen("holiday.mkv");
        var screen = h.Screen;
        Assert.Contains("[#####-----]  50%", screen, StringComparison.Ordinal);
        Assert.Contains("2.5 MiB/s", screen, StringComparison.Ordinal);
        Assert.Contains("2m20s", screen, StringComparison.Ordinal);
        Assert.Contains("downloading", screen, StringComparison.Ordinal);
        Assert.Equal(0.5f, h.Tui.Transfers.Overall.Fraction, 0.01f);

        h.Dialogs.Enqueue(d => d.Press("Stop it"));
        h.Press(Key.C);
        h.WaitFor(() => h.Client.Called("CancelTransferAsync b3:1111aaaa"), "CancelTransferAsync");
        h.WaitForScreen("cancelled");
        // The rate column shrank to "-": nothing of the old "2.5 MiB/s" stays behind.
        Assert.DoesNotContain("/s", h.Screen, StringComparison.Ordinal);
    }

    [Fact]
    public void Progress_rows_that_go_away_leave_nothing_behind()
    {
        using var h = new TuiHarness();
        h.Client.Transfers.Add(new TransferView("b3:5555eeee", "second.iso", 1L << 20, 4L << 20, 3.5 * (1 << 20), 1, TimeSpan.FromSeconds(3), TransferViewState.Downloading));
        h.Press(Key.F4);
        h.WaitForScreen("second.iso");
        Assert.Contains("3.5 MiB/s", h.Screen, StringComparison.Ordinal);
        h.Client.Transfers.Clear();
        h.Refresh(() => !h.Screen.Contains("holiday.mkv", StringComparison.Ordinal), "the rows to go");
        var screen = h.Screen;
        Assert.DoesNotContain("/s", screen, StringComparison.Ordinal);
        Assert.DoesNotContain("second.iso", screen, StringComparison.Ordinal);
        Assert.DoesNotContain("%", screen, StringComparison.Ordinal);
    }

    [Fact]
    public void Quarantine_shows_the_reason_inspects_releases_and_deletes_after_confirming()
    {
        using var h = new TuiHarness();
        h.Press(Key.F5);
        h.WaitForScreen("scanner: Win.Test.EICAR");

        h.Press(Key.I);
        h.WaitForDialog("Content ID b3:3333cccc");
        Assert.Contains(FakeNodeClient.BobId, h.SeenDialogs[^1], StringComparison.Ordinal);

        h.Dialogs.Enqueue(d => d.Key(Key.Enter)); // default: Cancel
        h.Press(Key.D);
        h.WaitFor(() => h.SeenDialogs.Count == 2, "the delete confirmation");
        Thread.Sleep(50);
        h.Pump();
        Assert.False(h.Client.Called("DeleteAsync"));

        var dir = Directory.CreateTempSubdirectory("securemesh-release-").FullName;
        try
        {
            h.Dialogs.Enqueue(d =>
            {
                d.Fields[0].Text = dir;
                d.Press("OK");
            });
            h.Press(Key.R);
            h.WaitFor(() => h.Client.Called($"ReleaseAsync q1 {dir}"), "ReleaseAsync");
        }
        finally
        {
            Directory.Delete(dir);
        }

        h.Client.Quarantine.Add(new QuarantineItemView("q2", "b3:4444", "other.bin", "held", null, 10));
        h.Refresh(() => h.Screen.Contains("other.bin", StringComparison.Ordinal), "the new item");
        h.Dialogs.Enqueue(d => d.Press("Delete"));
        h.Press(Key.D);
        h.WaitFor(() => h.Client.Called("DeleteAsync q2"), "DeleteAsync");
    }

    [Fact]
    public void Log_is_newest_first_and_the_chain_check_shows_ok_or_the_broken_entry()
    {
        using var h = new TuiHarness();
        h.Press(Key.F6);
        h.WaitForScreen("quarantine.held");
        var screen = h.Screen;
        Assert.True(screen.IndexOf("quarantine.held", StringComparison.Ordinal) < screen.IndexOf("peer.trusted", StringComparison.Ordinal));

        h.Press(Key.V);
        h.WaitForDialog("OK: 3 entries");

        h.Client.Verification = new LogVerificationView(false, 3, 2, "hash mismatch");
        h.Press(Key.V);
        h.WaitForDialog("BROKEN at entry 2");
        h.WaitForScreen("BROKEN at entry 2");
    }

    [Fact]
    public void Digits_type_into_the_search_field_instead_of_switching_views()
    {
        using var h = new TuiHarness();
        h.Press(Key.F3);
        h.Press(Key.D2);
        Assert.Equal("2", h.Tui.Search.Query.Text);
        Assert.Same(h.Tui.Search, h.Tui.CurrentPage);
        h.Press(Key.F2);
        Assert.Same(h.Tui.Shares, h.Tui.CurrentPage);
    }

    [Fact]
    public void In_a_view_with_a_text_field_digits_go_to_the_field_even_from_the_results_and_alt_digits_switch_views()
    {
        using var h = new TuiHarness();
        Assert.Contains("F1-F7/Alt+1-7 views", h.Screen, StringComparison.Ordinal);
        h.Press(Key.F3);
        foreach (var c in "holiday")
        {
            h.Press(new Key(c));
        }
        h.Press(Key.Enter);
        h.WaitForScreen("2 result(s)");
        Assert.False(h.Tui.Search.Query.HasFocus, "the results should have the focus after a search");

        h.Press(Key.D2);
        Assert.Same(h.Tui.Search, h.Tui.CurrentPage);
        Assert.Equal("holiday2", h.Tui.Search.Query.Text);

        h.Press(Key.D2.WithAlt);
        Assert.Same(h.Tui.Shares, h.Tui.CurrentPage);
        // A view without a text field still takes bare digits as view keys.
        h.Press(Key.D6);
        Assert.Same(h.Tui.Log, h.Tui.CurrentPage);
        h.Press(Key.D3.WithAlt);
        Assert.Same(h.Tui.Search, h.Tui.CurrentPage);
    }

    [Fact]
    public void Log_view_shows_entries_added_while_it_is_open_and_says_when_the_chain_was_checked()
    {
        using var h = new TuiHarness();
        h.Press(Key.F6);
        h.WaitForScreen("quarantine.held");
        h.Client.Log.Add(new LogEntryView(4, DateTimeOffset.UnixEpoch.AddMinutes(3), "peer.pending", FakeNodeClient.BobId, "a new visitor"));
        h.Refresh(() => h.Screen.Contains("a new visitor", StringComparison.Ordinal), "the new entry");
        var screen = h.Screen;
        Assert.True(screen.IndexOf("a new visitor", StringComparison.Ordinal) < screen.IndexOf("quarantine.held", StringComparison.Ordinal));

        h.Press(Key.V);
        h.WaitForDialog("OK: 3 entries");
        Assert.Matches("Checked [0-9]{2}:[0-9]{2}:[0-9]{2}: OK", h.Tui.Log.Verification.Text);
    }

    [Fact]
    public void A_search_with_no_connected_peer_says_so_instead_of_nothing_found()
    {
        using var h = new TuiHarness();
        h.Client.Status = h.Client.Status with { Connections = 0 };
        h.Press(Key.F3);
        foreach (var c in "holiday")
        {
            h.Press(new Key(c));
        }
        h.Client.SearchResults.Clear();
        h.Press(Key.Enter);
        h.WaitForScreen("No trusted peer is connected");
        Assert.DoesNotContain("Nothing found", h.Screen, StringComparison.Ordinal);

        h.Client.Status = h.Client.Status with { Connections = 1 };
        h.Press(Key.Enter);
        h.WaitForScreen("Nothing found for \"holiday\"");
    }

    [Fact]
    public void Escape_does_not_quit_and_ctrl_q_ends_run()
    {
        using var app = Terminal.Gui.App.Application.Create().Init(Terminal.Gui.Drivers.DriverRegistry.Names.ANSI);
        app.Driver!.SetScreenSize(80, 24);
        var client = new FakeNodeClient();
        using var tui = new TuiApp(app, client, new TuiOptions { PollInterval = TimeSpan.FromMilliseconds(20) });
        var steps = 0;
        app.AddTimeout(TimeSpan.FromMilliseconds(100), () =>
        {
            steps++;
            if (steps == 1)
            {
                app.Keyboard.RaiseKeyDownEvent(Key.Esc);
                return true;
            }
            app.Keyboard.RaiseKeyDownEvent(Key.Q.WithCtrl);
            return false;
        });
        tui.Run();
        Assert.Equal(2, steps);
        Assert.True(client.Called("GetStatusAsync"));
        // After the UI stopped, a late answer is ignored rather than touching a dead UI.
        tui.Post(() => throw new InvalidOperationException("must not run"));
        tui.RequestRefresh();
    }

    private static void SelectPeer(TuiHarness h, string name)
    {
        h.Press(Key.F1);
        h.WaitFor(() => h.Tui.Peers.Rows.Any(p => p.Name == name), $"peer {name}");
        var row = h.Tui.Peers.Rows.ToList().FindIndex(p => p.Name == name);
        var table = (Terminal.Gui.Views.TableView)h.Tui.Peers.SubViews.Single();
        table.SetSelection(0, row, false);
        h.Pump();
        Assert.Equal(name, h.Tui.Peers.Selected?.Name);
    }
}

public sealed class TuiCommandTests
{
    [Fact]
    public void Tui_without_a_node_service_fails_with_a_clear_line()
    {
        Assert.Null(TuiHost.ClientFactory);
        using var cli = new CliHarness();
        var result = cli.Home_("tui");
        Assert.Equal(1, result.ExitCode);
        Assert.Equal(["error: the terminal UI needs the node service, which this build does not include yet"], result.ErrLines);
    }
}
