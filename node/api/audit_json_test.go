package api

import "testing"

func TestAuditJSONTimes(t *testing.T) {
	in := `{"process":"bafy","p2":{"ok":true,"notices":[{"claimed":1800000000000,"date":1800000000123,"firstSeen":null,"noticeSeconds":86400,"subject":"a <b> & c"}]},"stages":[{"plannedEnd":0,"started":1800000000000}],"list":[1,2.5,"x",false]}`
	want := `{"process":"bafy","p2":{"ok":true,"notices":[{"claimed":"2027-01-15T08:00:00.000Z","date":"2027-01-15T08:00:00.123Z","firstSeen":null,"noticeSeconds":86400,"subject":"a <b> & c"}]},"stages":[{"plannedEnd":"1970-01-01T00:00:00.000Z","started":"2027-01-15T08:00:00.000Z"}],"list":[1,2.5,"x",false]}`
	got, err := auditJSON([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if _, err := auditJSON([]byte(`{"time":1.5}`)); err == nil {
		t.Fatal("a time that is not an integer was accepted")
	}
}

func TestWebDuration(t *testing.T) {
	for s, want := range map[int64]string{0: "0s", 59: "59s", 3599: "59m 59s", 3600: "1h", 86400: "1d", 90000: "1d 1h", 1209600: "14d"} {
		if got := webDuration(s); got != want {
			t.Errorf("webDuration(%d) = %q, want %q", s, got, want)
		}
	}
}
